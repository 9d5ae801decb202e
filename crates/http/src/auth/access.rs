//! [`Access`]: who may call an operation — declared once per operation beside its handler's
//! name in the operations list, mounted with its route, and enforced by the extractors
//! ([`super::Auth`] with [`Declared`], [`super::SessionOnly`]) from there.

use actix_web::HttpRequest;
use actix_web::http::Method;
use agentvista_keys::{Role, Scope};

use super::Requirement;

/// Who may call one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the handler reads no credential.
    Public,
    /// An API key with `scope` (any valid key when `None`: the handler judges what it may
    /// do), or a session whose role in its account is at least `role`.
    KeyOrSession {
        /// The scope a key needs.
        scope: Option<Scope>,
        /// The least role a session needs.
        role: Role,
    },
    /// A dashboard session only (an API key gets 403 `session_required`), whose role in its
    /// account is at least `role`; `None`: any session, with or without an account.
    Session {
        /// The least role, when the operation acts on the session's account.
        role: Option<Role>,
    },
}

impl Access {
    /// A key with `scope`, or a session of at least `role`.
    #[must_use]
    pub const fn key_or_session(scope: Scope, role: Role) -> Self {
        Access::KeyOrSession {
            scope: Some(scope),
            role,
        }
    }

    /// Any valid key (the handler judges), or a session of at least `role`.
    #[must_use]
    pub const fn any_key_or_session(role: Role) -> Self {
        Access::KeyOrSession { scope: None, role }
    }

    /// A session of at least `role` in its account.
    #[must_use]
    pub const fn session(role: Role) -> Self {
        Access::Session { role: Some(role) }
    }

    /// Any session, with or without an account: what a person does for themself.
    #[must_use]
    pub const fn any_session() -> Self {
        Access::Session { role: None }
    }

    /// The least role a session needs in its account; `None`: it needs no account.
    #[must_use]
    pub const fn session_role(self) -> Option<Role> {
        match self {
            Access::KeyOrSession { role, .. } | Access::Session { role: Some(role) } => Some(role),
            Access::Session { role: None } | Access::Public => None,
        }
    }
}

/// The access of each method mounted on one path, as route data: the extractors find the
/// request's own by its method.
#[derive(Clone, Debug, Default)]
pub(crate) struct MountedAccess(pub(crate) Vec<(Method, Access)>);

impl MountedAccess {
    /// The declared access of `req`'s operation, if it was mounted from the declaration.
    pub(crate) fn of(req: &HttpRequest) -> Option<Access> {
        let mounted = req.app_data::<MountedAccess>()?;
        mounted
            .0
            .iter()
            .find(|(method, _)| method == req.method())
            .map(|(_, access)| *access)
    }
}

/// The requirement of the AgentVista server's own handlers: `Auth<Declared>` enforces the
/// [`Access`] declared for the operation, read from the route it was mounted with. A handler
/// mounted without a declaration is refused (500): it cannot be reached by accident.
#[derive(Debug)]
pub struct Declared;

impl Requirement for Declared {
    const SCOPE: Option<Scope> = None;

    fn access(req: &HttpRequest) -> Option<Access> {
        MountedAccess::of(req)
    }
}
