//! [`Role`]: what a person may do in an account they belong to, and the rules of changing one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Scope, Scopes};

/// A member's role in an account. Roles are ordered: each grants what the ones below it grant.
///
/// | role | may |
/// | --- | --- |
/// | `viewer` | read traces, usage and the billing page; see keys (never their secrets) and members; list and end their own sessions; leave |
/// | `member` | and send events, create `read`/`write` keys, revoke or roll the keys they created |
/// | `admin` | and revoke or roll any key, mint `admin` keys, set the spend cap, read the audit log; invite, change the role of and remove members who are not owners |
/// | `owner` | and switch the plan, make or remove owners, delete the account |
///
/// ```
/// use agentvista_keys::{Role, Scope, Scopes};
///
/// let role: Role = "member".parse()?;
/// assert!(role >= Role::Viewer && role < Role::Admin);
/// assert!(role.may_mint("read,write".parse()?));
/// assert!(!role.may_mint(Scopes::only(Scope::Admin)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads only.
    Viewer,
    /// Works with traces and the keys they make.
    Member,
    /// Runs the account's keys and members, owners aside.
    Admin,
    /// Everything, plan and deletion included. An account always has one.
    Owner,
}

/// A role name that is not one of the four.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown role: expected owner, admin, member or viewer")]
pub struct RoleError;

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Member, Role::Admin, Role::Owner];

    /// The role's name as used in JSON, the CLI and the database.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// Whether a person of this role may create (or roll into) a key of `scopes`: members
    /// only `read` and `write`, so that no member mints a key that acts as an admin.
    #[must_use]
    pub fn may_mint(self, scopes: Scopes) -> bool {
        self >= Role::Admin || !scopes.contains(Scope::Admin)
    }

    /// Whether a person of this role may change a member whose role is `current` to `next`
    /// (`None`: remove them). Admins manage everyone but owners, and neither make nor
    /// unmake an owner; owners manage everyone. Anyone below admin manages no one.
    ///
    /// # Errors
    /// The role the change needs, when this one is not enough.
    pub fn may_change(self, current: Role, next: Option<Role>) -> Result<(), Role> {
        let touches_owner = current == Role::Owner || next == Some(Role::Owner);
        let needed = if touches_owner {
            Role::Owner
        } else {
            Role::Admin
        };
        if self >= needed { Ok(()) } else { Err(needed) }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = RoleError;

    /// Exact lower-case names only, like the JSON form.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or(RoleError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_nothing_else_parses() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(
                serde_json::to_string(&role).unwrap_or_default(),
                format!("\"{role}\"")
            );
        }
        for bad in ["", "Owner", "root", "admin "] {
            assert_eq!(bad.parse::<Role>(), Err(RoleError), "{bad:?}");
        }
    }

    #[test]
    fn only_admins_and_owners_mint_admin_keys() {
        let admin = Scopes::only(Scope::Admin);
        let minted: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|role| role.may_mint(admin))
            .collect();
        assert_eq!(minted, [Role::Admin, Role::Owner]);
        assert!(Role::Member.may_mint(Scopes::only(Scope::Read).with(Scope::Write)));
    }

    #[test]
    fn admins_manage_everyone_but_owners_and_owners_manage_all() {
        use Role::{Admin, Member, Owner, Viewer};
        // (acting, current, next) → what it needs, when refused.
        let cases = [
            (Admin, Member, Some(Admin), Ok(())),
            (Admin, Admin, Some(Viewer), Ok(())),
            (Admin, Admin, None, Ok(())),
            (Admin, Member, Some(Owner), Err(Owner)),
            (Admin, Owner, Some(Admin), Err(Owner)),
            (Admin, Owner, None, Err(Owner)),
            (Owner, Owner, Some(Viewer), Ok(())),
            (Owner, Viewer, Some(Owner), Ok(())),
            (Member, Viewer, Some(Member), Err(Admin)),
            (Viewer, Viewer, None, Err(Admin)),
        ];
        for (acting, current, next, want) in cases {
            assert_eq!(
                acting.may_change(current, next),
                want,
                "{acting} changing {current} to {next:?}"
            );
        }
    }
}
