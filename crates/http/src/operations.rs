//! The one declaration of the JSON API's operations, which both the route table
//! ([`crate::routes`]) and the OpenAPI document ([`crate::openapi`]) are made from, with who
//! may call each. It names handlers only by their paths in `crate::handlers`, so that it
//! depends on no module but the one that defines [`Access`].

use agentvista_keys::{Role, Scope};

use crate::auth::Access;

/// No credential: health, the document, login, first-run setup, leak reports, accepting an
/// invitation (which reads a session of its own accord).
pub(crate) const PUBLIC: Access = Access::Public;
/// A session, with or without an account: what a person does for themself.
pub(crate) const SELF: Access = Access::any_session();
/// A `read` key, or any member.
pub(crate) const READ: Access = Access::key_or_session(Scope::Read, Role::Viewer);
/// A `write` key, or a member who may send events.
pub(crate) const WRITE: Access = Access::key_or_session(Scope::Write, Role::Member);
/// An `admin` key, or any member: lists without secrets (keys, members).
pub(crate) const LIST: Access = Access::key_or_session(Scope::Admin, Role::Viewer);
/// An `admin` key, or a member; a member makes only `read`/`write` keys and rolls only the
/// keys they created (the handler judges, by [`Role::may_mint`]).
pub(crate) const MINT_KEYS: Access = Access::key_or_session(Scope::Admin, Role::Member);
/// Any key (an `admin` key, or the key itself), or a member; a member revokes only the keys
/// they created (the handler judges).
pub(crate) const REVOKE_KEYS: Access = Access::any_key_or_session(Role::Member);
/// An `admin` key, or an admin.
pub(crate) const ADMIN: Access = Access::key_or_session(Scope::Admin, Role::Admin);
/// An admin's session: never a key, so that a leaked key cannot change who is in the account.
pub(crate) const ADMIN_SESSION: Access = Access::session(Role::Admin);
/// Any member's session (the handler judges: leaving needs no role, removing others does).
pub(crate) const MEMBER_SESSION: Access = Access::session(Role::Viewer);
/// An owner's session.
pub(crate) const OWNER: Access = Access::session(Role::Owner);

/// Every operation of the JSON API, in the order actix matches them, as
/// `module::handler => access` (the handler's name is its `operationId`; the access is an
/// [`crate::auth::Access`]: who may call it); hands the list to `$then!`. Adding an endpoint
/// is a line here and its annotated handler: the route table, the access its extractors
/// enforce and the OpenAPI document all come from this list. Mounting a handler anywhere
/// else would escape the document; the dashboard's HTML pages are the only routes outside it.
///
/// The roles are the teams table of `docs/api.md`: every role reads and lists; members send
/// events and make `read`/`write` keys; admins run keys, the spend cap, the audit log and
/// members; owners the plan and the owners. What a person does for themself (their session,
/// password, accounts and sessions) needs a session and no role.
macro_rules! operations {
    ($then:ident) => {
        $then! {
            health::healthz => PUBLIC,
            health::readyz => PUBLIC,
            meta::openapi => PUBLIC,
            setup::setup => PUBLIC,
            session::login => PUBLIC,
            session::logout => SELF,
            session::current_session => SELF,
            session::list_accounts => SELF,
            session::switch_account => SELF,
            own_sessions::list_sessions => SELF,
            // Before "/api/v1/me/sessions/{session_id}/", for the same reason as the batch.
            own_sessions::end_other_sessions => SELF,
            own_sessions::end_session => SELF,
            members::list_members => LIST,
            members::set_member_role => ADMIN_SESSION,
            members::remove_member => MEMBER_SESSION,
            invitations::create_invitation => ADMIN_SESSION,
            invitations::list_invitations => ADMIN_SESSION,
            invitations::revoke_invitation => ADMIN_SESSION,
            invitations::accept_invitation => PUBLIC,
            password::change_password => SELF,
            keys::ping => READ,
            keys::list_api_keys => LIST,
            keys::create_api_key => MINT_KEYS,
            keys::revoke_api_key => REVOKE_KEYS,
            keys::roll_api_key => MINT_KEYS,
            leaks::report_leaked_keys => PUBLIC,
            audit::audit_log => ADMIN,
            // Before "/api/v1/traces/{trace_id}/", which would otherwise take "batch" for an
            // id; a GET there still reads the trace whose id is "batch".
            ingest::ingest_batch => WRITE,
            traces::get_trace_batch => READ,
            ingest::otlp_traces => WRITE,
            ingest::otlp_logs => WRITE,
            ingest::otlp_metrics => WRITE,
            traces::list_traces => READ,
            traces::get_trace => READ,
            usage::get_usage => READ,
            usage::get_daily_usage => READ,
            usage::set_spend_cap => ADMIN,
            usage::set_plan => OWNER,
            account::delete_account => OWNER,
        }
    };
}
pub(crate) use operations;
