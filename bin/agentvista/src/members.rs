//! `agentvista members …`: an account's people by hand. The operator may do what an owner
//! may; the rule that an account keeps an owner holds here too.

use agentvista_keys::{AccountName, Actor, Email, Role};
use agentvista_store::{ChangedBy, MemberChange, Origin, Store, StoreError};
use chrono::Utc;

use crate::commands::{CommandError, account_named, print_json, print_table, usage, user_by_email};

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
