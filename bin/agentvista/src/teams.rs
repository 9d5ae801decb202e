//! `agentvista members …`, `agentvista invitations …` and `agentvista accounts delete`: an
//! account's people by hand, and its end. The
//! operator may do what an owner may; the rule that an account keeps an owner holds here too.

use agentvista_keys::{AccountName, Actor, Email, InvitationToken, Role};
use agentvista_store::{ChangedBy, MemberChange, NewInvitation, Origin, Store, StoreError};
use chrono::Utc;

use crate::commands::{CommandError, account_named, print_json, print_table, usage, user_by_email};
use crate::settings::Settings;

pub(crate) async fn list(
    store: &Store,
    account: &AccountName,
    json: bool,
) -> Result<(), CommandError> {
    let account = account_named(store, account).await?;
    let members = store.memberships().of_account(account.id).await?;
    if json {
        let objects: Vec<serde_json::Value> = members
            .iter()
            .map(|m| {
                serde_json::json!({
                    "user_id": m.user_id.0,
                    "email": m.email,
                    "role": m.role,
                    "joined_at": m.joined_at,
                })
            })
            .collect();
        return print_json(&objects);
    }
    let rows: Vec<[String; 3]> = members
        .iter()
        .map(|m| {
            [
                m.email.clone(),
                m.role.to_string(),
                m.joined_at.format("%Y-%m-%d %H:%M").to_string(),
            ]
        })
        .collect();
    print_table(&["EMAIL", "ROLE", "JOINED"], &rows);
    Ok(())
}

/// Sets `email`'s role in `account` (`None`: removes them).
pub(crate) async fn change(
    store: &Store,
    account: &AccountName,
    email: &Email,
    next: Option<Role>,
) -> Result<(), CommandError> {
    let named = account_named(store, account).await?;
    let user = user_by_email(store, email).await?;
    let actor = Actor::Cli.to_string();
    let origin = Origin::default();
    let done = store
        .memberships()
        .change(MemberChange {
            account: named.id,
            target: user.id,
            next,
            by: ChangedBy::Operator,
            actor: &actor,
            origin: &origin,
            at: Utc::now(),
        })
        .await;
    match done {
        Ok(_) => {}
        Err(StoreError::NotFound) => {
            return Err(usage(format!("{email} is not a member of {account}")));
        }
        Err(StoreError::LastOwner) => {
            return Err(usage(format!(
                "{email} is the last owner of {account}: make someone else an owner first"
            )));
        }
        Err(other) => return Err(other.into()),
    }
    match next {
        Some(role) => println!("{email} is now {role} of {account}"),
        None => println!("{email} is no longer a member of {account}"),
    }
    Ok(())
}

/// How long an invitation works, as from the API.
const INVITATION_DAYS: i64 = 7;

pub(crate) async fn invite(
    store: &Store,
    settings: &Settings,
    account: &AccountName,
    email: &Email,
    role: Role,
) -> Result<(), CommandError> {
    let named = account_named(store, account).await?;
    let token = InvitationToken::generate().map_err(|e| usage(e.to_string()))?;
    let now = Utc::now();
    let actor = Actor::Cli.to_string();
    let created = store
        .invitations()
        .create(NewInvitation {
            account: named.id,
            email,
            role,
            token_hash: &token.hash(),
            invited_by: None,
            acting: Role::Owner,
            actor: &actor,
            origin: &Origin::default(),
            now,
            expires_at: now + chrono::TimeDelta::days(INVITATION_DAYS),
        })
        .await
        .map_err(|e| match e {
            StoreError::AlreadyMember => usage(format!("{email} is a member of {account} already")),
            other => other.into(),
        })?;
    eprintln!(
        "invited {email} to {account} as {role} (invitation {}, until {}); the link is shown \
         once, hand it on now:",
        created.id,
        created.expires_at.format("%Y-%m-%d %H:%M UTC")
    );
    println!(
        "{}/invite/{}",
        settings.server.public_url(),
        token.expose_secret()
    );
    Ok(())
}

pub(crate) async fn invitations(
    store: &Store,
    account: &AccountName,
    json: bool,
) -> Result<(), CommandError> {
    let named = account_named(store, account).await?;
    let pending = store.invitations().pending(named.id, Utc::now()).await?;
    if json {
        let objects: Vec<serde_json::Value> = pending
            .iter()
            .map(|i| {
                serde_json::json!({
                    "id": i.id,
                    "email": i.email,
                    "role": i.role,
                    "created_at": i.created_at,
                    "expires_at": i.expires_at,
                })
            })
            .collect();
        return print_json(&objects);
    }
    let rows: Vec<[String; 4]> = pending
        .iter()
        .map(|i| {
            [
                i.id.to_string(),
                i.email.clone(),
                i.role.to_string(),
                i.expires_at.format("%Y-%m-%d %H:%M").to_string(),
            ]
        })
        .collect();
    print_table(&["ID", "EMAIL", "ROLE", "EXPIRES"], &rows);
    Ok(())
}

pub(crate) async fn revoke_invitation(
    store: &Store,
    account: &AccountName,
    id: i64,
) -> Result<(), CommandError> {
    let named = account_named(store, account).await?;
    let actor = Actor::Cli.to_string();
    match store
        .invitations()
        .revoke(
            named.id,
            id,
            Role::Owner,
            &actor,
            &Origin::default(),
            Utc::now(),
        )
        .await
    {
        Ok(()) => {
            println!("revoked invitation {id}");
            Ok(())
        }
        Err(StoreError::NotFound) => {
            Err(usage(format!("{account} has no pending invitation {id}")))
        }
        Err(other) => Err(other.into()),
    }
}

pub(crate) async fn delete_account(
    store: &Store,
    account: &AccountName,
    confirm: &str,
) -> Result<(), CommandError> {
    if confirm != account.as_str() {
        return Err(usage(format!(
            "--confirm: type the account's name, {account}, to delete it"
        )));
    }
    let named = account_named(store, account).await?;
    let origin = Origin::default();
    let closing = agentvista_keys::AccountClosing {
        account: named.id,
        by: Actor::Cli,
        email: None,
        at: Utc::now(),
        origin: &origin,
    };
    // Through the lookup port, as every change that can stop a key: this returns once no
    // running server accepts any key of the account.
    let revoked = agentvista_keys::KeyLookup::close_account(store, closing)
        .await?
        .ok_or_else(|| usage(format!("no account named {account}")))?;
    println!(
        "deleted account {account}: {revoked} key(s) revoked; its data goes with the next \
         retention sweep"
    );
    Ok(())
}
