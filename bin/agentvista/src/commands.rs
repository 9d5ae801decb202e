//! The administrative subcommands: thin wrappers over the store.

use std::io::{BufRead, IsTerminal};

use agentvista_http::{CreatedKey, KeyObject};
use agentvista_keys::password::{Password, PasswordHash, hash_password};
use agentvista_keys::{
    AccountId, AccountName, Actor, Asked, Email, Expiry, KeyLookup, KeyName, KeyPrefix, KeyStatus,
    LookupError, RateLimit, Role, Scopes,
};
use agentvista_store::{
    Account, AuditAction, NewAuditEntry, NewKey, Origin, RollError, RollTerms, Store, StoreError,
    User,
};
use chrono::{DateTime, Utc};

use crate::settings::Settings;

/// A failed command: one line for standard error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CommandError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub(crate) fn usage(message: impl Into<String>) -> CommandError {
    CommandError::Usage(message.into())
}

/// Records what the operator did in the account's audit log (actor `cli`, no address).
pub(crate) async fn audit(
    store: &Store,
    account: AccountId,
    action: AuditAction,
    target: Option<String>,
    detail: Option<serde_json::Value>,
) -> Result<(), CommandError> {
    store
        .audit()
        .append(NewAuditEntry {
            account,
            action,
            actor: Actor::Cli.to_string(),
            target,
            origin: &Origin::default(),
            detail,
            at: Utc::now(),
        })
        .await?;
    Ok(())
}

pub(crate) async fn user_by_email(store: &Store, email: &Email) -> Result<User, CommandError> {
    store
        .users()
        .find_by_email(email)
        .await?
        .map(|credentials| credentials.user)
        .ok_or_else(|| usage(format!("no user with e-mail {email}")))
}

/// The password from `AGENTVISTA_PASSWORD`, else one line of standard input.
fn read_password() -> Result<Password, CommandError> {
    if let Ok(password) = std::env::var("AGENTVISTA_PASSWORD") {
        return Ok(Password::new(password));
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        // Typed at a terminal: not echoed.
        return Ok(Password::new(rpassword::prompt_password("Password: ")?));
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    // Trimmed in place and moved, so that no second copy of the password is left behind.
    line.truncate(line.trim_end_matches(['\r', '\n']).len());
    Ok(Password::new(line))
}

/// A new password, read as [`read_password`] reads it, hashed off the async threads.
async fn new_password_hash() -> Result<PasswordHash, CommandError> {
    let password = read_password()?;
    actix_web::web::block(move || hash_password(&password))
        .await
        .map_err(|e| usage(e.to_string()))?
        .map_err(|e| usage(e.to_string()))
}

/// Prints `value` as indented JSON on standard output.
pub(crate) fn print_json(value: &impl serde::Serialize) -> Result<(), CommandError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| usage(e.to_string()))?;
    println!("{text}");
    Ok(())
}

pub(crate) async fn create_user(
    store: &Store,
    settings: &Settings,
    email: &Email,
    account_name: Option<&AccountName>,
    role: Option<Role>,
) -> Result<(), CommandError> {
    let existing = store.users().find_by_email(email).await?;
    if let (Some(role), Some(name)) = (role, account_name) {
        return join_account(store, email, name, role, existing.map(|c| c.user)).await;
    }
    if existing.is_some() {
        return Err(usage(format!(
            "a user with e-mail {email} exists already; add them to an account with --account \
             and --role"
        )));
    }
    let name = match account_name {
        Some(name) => name.clone(),
        // An address can be longer than an account name may be.
        None => AccountName::parse(email.as_str()).map_err(|e| {
            usage(format!(
                "{email} cannot name an account (an account name {e}); pass --account"
            ))
        })?,
    };
    if store.accounts().find_by_name(&name).await?.is_some() {
        return Err(usage(format!(
            "an account named {name} exists already; to add {email} to it, pass --role"
        )));
    }
    let hash = new_password_hash().await?;
    let (account, user) = store
        .accounts()
        .create_with_owner(&name, &settings.default_plan, (email, &hash), Utc::now())
        .await?;
    println!(
        "created user {} (id {}), owner of account {} (id {}, plan {})",
        user.email, user.id, account.name, account.id.0, account.plan
    );
    Ok(())
}

/// Adds `email` to the existing account `name` with `role`: the person `existing`, or a new
/// one (whose password is read as for a new user).
async fn join_account(
    store: &Store,
    email: &Email,
    name: &AccountName,
    role: Role,
    existing: Option<User>,
) -> Result<(), CommandError> {
    let account = account_named(store, name).await?;
    let now = Utc::now();
    let user = match existing {
        Some(user) => {
            store
                .memberships()
                .add(account.id, user.id, role, now)
                .await
                .map_err(|e| match e {
                    StoreError::AlreadyMember => {
                        usage(format!("{email} is a member of {name} already"))
                    }
                    other => other.into(),
                })?;
            user
        }
        None => {
            let hash = new_password_hash().await?;
            store
                .users()
                .create(account.id, role, email, &hash, now)
                .await?
        }
    };
    audit(
        store,
        account.id,
        AuditAction::MemberAdded,
        Some(user.email.clone()),
        Some(serde_json::json!({"role": role})),
    )
    .await?;
    println!(
        "{} (id {}) is now {role} of account {} (id {})",
        user.email, user.id, account.name, account.id.0
    );
    Ok(())
}

/// The account named `name`.
pub(crate) async fn account_named(
    store: &Store,
    name: &AccountName,
) -> Result<Account, CommandError> {
    store
        .accounts()
        .find_by_name(name)
        .await?
        .ok_or_else(|| usage(format!("no account named {name}")))
}

/// The person with `email` and the account their commands act on: the one their login starts
/// in.
async fn user_and_account(store: &Store, email: &Email) -> Result<(User, AccountId), CommandError> {
    let user = user_by_email(store, email).await?;
    let account = store
        .memberships()
        .starting_account(user.id)
        .await?
        .ok_or_else(|| usage(format!("{email} belongs to no account")))?;
    Ok((user, account.account_id))
}

pub(crate) async fn create_key(
    store: &Store,
    email: &Email,
    name: &KeyName,
    scopes: Scopes,
    (rate, burst): (Option<u32>, Option<u32>),
    expires: Option<DateTime<Utc>>,
    json: bool,
) -> Result<(), CommandError> {
    let now = Utc::now();
    let expiry =
        Expiry::for_new_key(expires, now).map_err(|_| usage("--expires: must be in the future"))?;
    let rate_limit = rate
        .map(|per_second| RateLimit::new(per_second, burst.unwrap_or(per_second)))
        .transpose()
        .map_err(|e| {
            usage(
                e.to_string()
                    .replace("rate_limit.per_second", "--rate-limit")
                    .replace("rate_limit.burst", "--burst"),
            )
        })?;
    let (_, account) = user_and_account(store, email).await?;
    let new = NewKey {
        name,
        scopes,
        expiry,
        // The operator made it, not a member.
        created_by: None,
        rate_limit,
    };
    let (key, record) = store.keys().create(account, new, now).await?;
    audit(
        store,
        account,
        AuditAction::KeyCreated,
        Some(record.prefix.to_string()),
        Some(serde_json::json!({"name": record.name, "scopes": record.scopes.to_string()})),
    )
    .await?;
    if json {
        let created = CreatedKey {
            object: KeyObject::new(record, &[]),
            key: key.expose_secret().to_owned(),
        };
        print_json(&created)?;
    } else {
        eprintln!(
            "created key {} ({}, scopes {}); it is shown once, store it now:",
            record.prefix, record.name, record.scopes
        );
        println!("{}", key.expose_secret());
    }
    Ok(())
}

pub(crate) async fn revoke_key(
    store: &Store,
    email: &Email,
    prefix: &KeyPrefix,
) -> Result<(), CommandError> {
    let (_, account) = user_and_account(store, email).await?;
    let no_key = || usage(format!("the account of {email} has no key {prefix}"));
    let record = match store.keys().find_by_prefix(account, prefix).await {
        Err(StoreError::NotFound) => return Err(no_key()),
        other => other?,
    };
    // Through the lookup port, as the API revokes: the one door to revoking a key. The store
    // writes the audit entry in the revocation's own transaction.
    KeyLookup::revoke(store, account, record.id, Actor::Cli, Utc::now())
        .await?
        .ok_or_else(no_key)?;
    println!("revoked key {prefix}");
    Ok(())
}

pub(crate) async fn roll_key(
    store: &Store,
    email: &Email,
    prefix: &KeyPrefix,
    grace_seconds: u64,
    json: bool,
) -> Result<(), CommandError> {
    let (_, account) = user_and_account(store, email).await?;
    let no_key = || usage(format!("the account of {email} has no key {prefix}"));
    let record = match store.keys().find_by_prefix(account, prefix).await {
        Err(StoreError::NotFound) => return Err(no_key()),
        other => other?,
    };
    let terms = RollTerms {
        grace: std::time::Duration::from_secs(grace_seconds),
        ..RollTerms::default()
    };
    let origin = Origin::default();
    let asked = Asked {
        by: Actor::Cli,
        at: Utc::now(),
        origin: &origin,
    };
    // Through the lookup port, as the API rolls: the old key's end waits for the barrier.
    let rolled = match KeyLookup::roll(store, account, record.id, terms, asked).await {
        Ok(rolled) => rolled,
        Err(RollError::NotFound) => return Err(no_key()),
        Err(RollError::Lookup(e)) => return Err(e.into()),
        Err(e) => return Err(usage(format!("{prefix}: {e}"))),
    };
    let until = rolled
        .old
        .expiry
        .expires_at()
        .map_or_else(|| "never".to_owned(), |at| at.to_rfc3339());
    if json {
        let created = CreatedKey {
            object: KeyObject::new(
                rolled.record,
                &store
                    .users()
                    .creators_of(std::slice::from_ref(&rolled.old))
                    .await?,
            ),
            key: rolled.key.expose_secret().to_owned(),
        };
        print_json(&created)?;
    } else {
        eprintln!(
            "rolled {prefix}: it works until {until}; the new key {} ({}, scopes {}) is shown \
             once, store it now:",
            rolled.record.prefix, rolled.record.name, rolled.record.scopes
        );
        println!("{}", rolled.key.expose_secret());
    }
    Ok(())
}

pub(crate) async fn set_plan(
    store: &Store,
    settings: &Settings,
    email: &Email,
    plan: &str,
) -> Result<(), CommandError> {
    if !settings.plans.contains_key(plan) {
        let known: Vec<&str> = settings.plans.keys().map(String::as_str).collect();
        return Err(usage(format!(
            "--plan: no plan named {plan:?} (known: {})",
            known.join(", ")
        )));
    }
    let (_, account) = user_and_account(store, email).await?;
    let account = store.accounts().set_plan(account, plan).await?;
    audit(
        store,
        account.id,
        AuditAction::PlanChanged,
        None,
        Some(serde_json::json!({"plan": account.plan})),
    )
    .await?;
    println!("account {} is now on plan {}", account.name, account.plan);
    Ok(())
}

/// At most this many keys are listed; an account holds at most `limits.max_active_keys`
/// active ones, and revoked ones pile up.
const LISTED_KEYS: u64 = 10_000;

pub(crate) async fn list_keys(
    store: &Store,
    email: &Email,
    json: bool,
) -> Result<(), CommandError> {
    let (_, account) = user_and_account(store, email).await?;
    let (keys, more) = store.keys().page(account, None, LISTED_KEYS).await?;
    if json {
        let people = store.users().creators_of(&keys).await?;
        let objects: Vec<KeyObject> = keys
            .iter()
            .map(|key| KeyObject::new(key.clone(), &people))
            .collect();
        print_json(&objects)?;
    } else {
        let now = Utc::now();
        let when = |at: Option<DateTime<Utc>>| {
            at.map_or_else(
                || "-".to_owned(),
                |at| at.format("%Y-%m-%d %H:%M").to_string(),
            )
        };
        let rows: Vec<[String; 7]> = keys
            .iter()
            .map(|key| {
                [
                    key.prefix.to_string(),
                    key.name.clone(),
                    key.scopes.to_string(),
                    match key.status(now) {
                        KeyStatus::Active => "active",
                        KeyStatus::Revoked => "revoked",
                        KeyStatus::Expired => "expired",
                    }
                    .to_owned(),
                    when(Some(key.created_at)),
                    when(key.last_used_at),
                    when(key.expiry.expires_at()),
                ]
            })
            .collect();
        let header = [
            "PREFIX",
            "NAME",
            "SCOPES",
            "STATUS",
            "CREATED",
            "LAST USED",
            "EXPIRES",
        ];
        print_table(&header, &rows);
    }
    if more.is_some() {
        eprintln!("(the newest {LISTED_KEYS} keys; the API pages through the rest)");
    }
    Ok(())
}

pub(crate) async fn list_users(store: &Store, json: bool) -> Result<(), CommandError> {
    let users = store.users().list().await?;
    let mut memberships = Vec::with_capacity(users.len());
    for user in &users {
        memberships.push(store.memberships().of_user(user.id).await?);
    }
    if json {
        let objects: Vec<serde_json::Value> = users
            .iter()
            .zip(&memberships)
            .map(|(user, accounts)| {
                let accounts: Vec<serde_json::Value> = accounts
                    .iter()
                    .map(|m| {
                        serde_json::json!({
                            "id": m.account_id.0,
                            "name": m.account_name,
                            "role": m.role,
                        })
                    })
                    .collect();
                serde_json::json!({
                    "id": user.id.0,
                    "email": user.email,
                    "accounts": accounts,
                    "created_at": user.created_at,
                })
            })
            .collect();
        print_json(&objects)?;
        return Ok(());
    }
    let rows: Vec<[String; 3]> = users
        .iter()
        .zip(&memberships)
        .map(|(user, accounts)| {
            let accounts: Vec<String> = accounts
                .iter()
                .map(|m| format!("{} ({})", m.account_name, m.role))
                .collect();
            [
                user.email.clone(),
                accounts.join(", "),
                user.created_at.format("%Y-%m-%d %H:%M").to_string(),
            ]
        })
        .collect();
    print_table(&["EMAIL", "ACCOUNTS", "CREATED"], &rows);
    Ok(())
}

pub(crate) async fn set_password(store: &Store, email: &Email) -> Result<(), CommandError> {
    let user = user_by_email(store, email).await?;
    let hash = new_password_hash().await?;
    let ended = store.users().set_password(user.id, &hash).await?;
    println!("password set for {email}; {ended} session(s) ended");
    Ok(())
}

/// Prints `rows` under `header` in columns as wide as their widest cell.
pub(crate) fn print_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; N]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(*header);
    for row in rows {
        line(row.each_ref().map(String::as_str));
    }
}
