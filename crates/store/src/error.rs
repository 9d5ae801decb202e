//! [`StoreError`]: everything the store can fail with, sea-orm kept inside.
//!
//! Which database errors mean "unavailable" (HTTP 503, OTLP code 14: retry later) rather than
//! a failure of this request (HTTP 500):
//!
//! - no connection: the pool timed out or is closed, the connection broke (I/O, TLS), the
//!   server closed it (a protocol error saying so), SQLite's worker thread died;
//! - SQLite, by primary result code: `BUSY` (5) and `LOCKED` (6) — past the busy timeout —,
//!   `NOMEM` (7), `READONLY` (8), `IOERR` (10), `FULL` (13), `CANTOPEN` (14): conditions of the
//!   server, not of the request;
//! - PostgreSQL, by SQLSTATE: class 08 (connection exception), class 53 (insufficient
//!   resources: disk full, out of memory, too many connections), 57P01 `admin_shutdown` (also
//!   what a backend terminated by `pg_terminate_backend` reports), 57P02 `crash_shutdown`,
//!   57P03 `cannot_connect_now`, 57P05 `idle_session_timeout`, 58030 `io_error`, 25006
//!   `read_only_sql_transaction` (connected to a standby);
//! - PostgreSQL 40001 `serialization_failure`, 40P01 `deadlock_detected` and 55P03
//!   `lock_not_available` too: the server rolled the whole transaction back, so a retry is
//!   safe and will most likely succeed. A 500 would be wrong for the client — OTLP exporters
//!   retry a 503 but drop the data on a 500 — and the 503 is logged with its source all the
//!   same, so a conflict that should not happen still shows.
//!
//! PostgreSQL 22021 `character_not_in_repertoire` and 22P05 `untranslatable_character` (a NUL
//! character in text or in JSON) are [`StoreError::InvalidInput`].

use std::borrow::Cow;

use sea_orm::sqlx::error::DatabaseError;
use sea_orm::sqlx::postgres::PgDatabaseError;
use sea_orm::sqlx::sqlite::SqliteError;
use sea_orm::{DbErr, RuntimeErr, sqlx};

/// Why a store operation failed. `DbErr` never leaves this crate as a type, only as a source.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot serve this now — unreachable, connection lost, shutting down or
    /// starting up, out of connections, memory or disk, read-only, locked past the busy
    /// timeout, the SQLite writer restarting, or a transaction rolled back by a transient
    /// conflict (see the module documentation for the exact codes). Retrying later may
    /// succeed: HTTP 503 `unavailable` (never 401), OTLP code 14.
    #[error("the database is unavailable")]
    Unavailable(#[source] DbErr),
    /// Any other database failure (HTTP 500; logged with its source chain).
    #[error("a database operation failed")]
    Database(#[source] DbErr),
    /// The database refused a value of the request as text it cannot hold: PostgreSQL rejects
    /// a NUL character in text (SQLSTATE 22021) and in JSON (22P05). HTTP 400. The last line
    /// of defence: input is validated before it gets here.
    #[error("the database refused a value as invalid text")]
    InvalidInput(#[source] DbErr),
    /// No such row for this account (HTTP 404 `not_found`).
    #[error("not found")]
    NotFound,
    /// The account holds [`StoreOptions::max_active_keys`](crate::StoreOptions) active keys
    /// already: another would pass the limit.
    #[error("the account holds {limit} active keys, the most it may")]
    TooManyKeys {
        /// The limit.
        limit: u32,
    },
    /// The account has [`StoreOptions::max_pending_invitations`](crate::StoreOptions)
    /// pending invitations already: another would pass the limit.
    #[error("the account has {limit} pending invitations, the most it may")]
    TooManyInvitations {
        /// The limit.
        limit: u32,
    },
    /// A user with this e-mail address exists already.
    #[error("a user with this e-mail address exists already")]
    EmailTaken,
    /// The person belongs to the account already.
    #[error("this person is a member of the account already")]
    AlreadyMember,
    /// The person signed in is not the one the invitation is for (it names the e-mail).
    #[error("this invitation is for someone else")]
    InvitedSomeoneElse(String),
    /// The change would leave the account without an owner (HTTP 409 `last_owner`).
    #[error("an account keeps at least one owner: make someone else an owner first")]
    LastOwner,
    /// The member asking may not make this change; it needs the role carried (HTTP 403
    /// `insufficient_role`).
    #[error("this change needs the {0} role")]
    InsufficientRole(agentvista_keys::Role),
    /// A page was asked for after a cursor made by a page under other filters (HTTP 400).
    #[error("cursor: made by a page under other filters than these")]
    CursorForOtherFilters,
    /// First-run setup after a user exists (HTTP 404: the setup is gone).
    #[error("this installation is set up already")]
    AlreadySetUp,
    /// A stored value that does not parse: a bug or a manual edit, never user input.
    #[error("stored {what} is malformed")]
    Corrupt {
        /// The column at fault.
        what: &'static str,
    },
    /// No key could be generated (the OS refused randomness, or prefixes kept colliding).
    #[error("no API key could be generated")]
    KeyGeneration(#[source] Option<agentvista_keys::GenerateError>),
    /// [`StoreOptions`](crate::StoreOptions) the store cannot run with safely.
    #[error("invalid store options: {0}")]
    InvalidOptions(String),
}

impl StoreError {
    /// Why no connection could be made, when the error says: for a message that names the
    /// cause (the caller knows the path or the host). `None` for any other error.
    #[must_use]
    pub fn connect_failure(&self) -> Option<ConnectFailure> {
        let (StoreError::Unavailable(err) | StoreError::Database(err)) = self else {
            return None;
        };
        let (DbErr::Conn(RuntimeErr::SqlxError(sqlx))
        | DbErr::Exec(RuntimeErr::SqlxError(sqlx))
        | DbErr::Query(RuntimeErr::SqlxError(sqlx))) = err
        else {
            return None;
        };
        match sqlx.as_ref() {
            sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                Some(ConnectFailure::Refused)
            }
            sqlx::Error::Io(_) => Some(ConnectFailure::Unreachable),
            sqlx::Error::PoolTimedOut => Some(ConnectFailure::TimedOut),
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or(Cow::Borrowed(""));
                if db.try_downcast_ref::<SqliteError>().is_some() {
                    (sqlite_primary(&code) == Some(SQLITE_CANTOPEN))
                        .then_some(ConnectFailure::CannotOpen)
                } else {
                    postgres_connect_failure(&code)
                }
            }
            _ => None,
        }
    }

    /// Whether the database cannot serve this now, as opposed to refusing this request
    /// ([`StoreError::Unavailable`]).
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<DbErr> for StoreError {
    /// Classifies `err`, and counts it as `agentvista_db_errors_total{kind}` (`unavailable`,
    /// `invalid_input` or `other`).
    fn from(err: DbErr) -> Self {
        let (kind, error) = match classify(&err) {
            Class::Unavailable => ("unavailable", StoreError::Unavailable(err)),
            Class::InvalidInput => ("invalid_input", StoreError::InvalidInput(err)),
            Class::Other => ("other", StoreError::Database(err)),
        };
        metrics::counter!("agentvista_db_errors_total", "kind" => kind).increment(1);
        error
    }
}

/// Why a connection to the database could not be made ([`StoreError::connect_failure`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectFailure {
    /// Nothing listens at the address (PostgreSQL).
    Refused,
    /// The network failed on the way (PostgreSQL).
    Unreachable,
    /// No connection within the pool's timeout (PostgreSQL).
    TimedOut,
    /// The server refused the login: a wrong password, or no such role (SQLSTATE 28P01,
    /// 28000).
    LoginRefused,
    /// The server has no database of that name (SQLSTATE 3D000).
    NoSuchDatabase,
    /// SQLite cannot open the file (`SQLITE_CANTOPEN`): a missing directory, a missing file
    /// it may not create, or one it may not write.
    CannotOpen,
}

/// SQLite's primary result code for a file it cannot open.
const SQLITE_CANTOPEN: i32 = 14;

/// The primary result code of SQLite's extended code `code` (decimal).
fn sqlite_primary(code: &str) -> Option<i32> {
    code.parse::<i32>().ok().map(|extended| extended & 0xff)
}

/// What a PostgreSQL SQLSTATE says of a failed connection, if anything.
fn postgres_connect_failure(code: &str) -> Option<ConnectFailure> {
    match code {
        "28P01" | "28000" => Some(ConnectFailure::LoginRefused),
        "3D000" => Some(ConnectFailure::NoSuchDatabase),
        _ => None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Unavailable,
    InvalidInput,
    Other,
}

fn classify(err: &DbErr) -> Class {
    match err {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => Class::Unavailable,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            classify_sqlx(e)
        }
        _ => Class::Other,
    }
}

fn classify_sqlx(err: &sqlx::Error) -> Class {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Class::Unavailable,
        sqlx::Error::Protocol(message) if says_connection_closed(message) => Class::Unavailable,
        sqlx::Error::Database(db) => classify_database(db.as_ref()),
        _ => Class::Other,
    }
}

/// A protocol error is normally a bug; one that reports the server going away is an outage.
fn says_connection_closed(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    ["closed", "terminat", "eof", "reset by peer", "broken pipe"]
        .iter()
        .any(|needle| message.contains(needle))
}

fn classify_database(err: &dyn DatabaseError) -> Class {
    let code = err.code().unwrap_or(Cow::Borrowed(""));
    if err.try_downcast_ref::<SqliteError>().is_some() {
        sqlite_class(&code)
    } else if err.try_downcast_ref::<PgDatabaseError>().is_some() {
        postgres_class(&code)
    } else {
        Class::Other
    }
}

/// `code` is SQLite's extended result code in decimal; its low byte is the primary code.
fn sqlite_class(code: &str) -> Class {
    const BUSY: i32 = 5;
    const LOCKED: i32 = 6;
    const NOMEM: i32 = 7;
    const READONLY: i32 = 8;
    const IOERR: i32 = 10;
    const FULL: i32 = 13;
    const CANTOPEN: i32 = 14;
    match code.parse::<i32>().map(|extended| extended & 0xff) {
        Ok(BUSY | LOCKED | NOMEM | READONLY | IOERR | FULL | CANTOPEN) => Class::Unavailable,
        _ => Class::Other,
    }
}

/// `code` is a PostgreSQL SQLSTATE.
fn postgres_class(code: &str) -> Class {
    match code {
        "22021" | "22P05" => Class::InvalidInput,
        "57P01" | "57P02" | "57P03" | "57P05" | "58030" | "25006" | "40001" | "40P01" | "55P03" => {
            Class::Unavailable
        }
        _ if code.starts_with("08") || code.starts_with("53") => Class::Unavailable,
        _ => Class::Other,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr, sqlx};

    use super::{
        Class, ConnectFailure, StoreError, classify, postgres_class, postgres_connect_failure,
        sqlite_class,
    };

    fn exec(err: sqlx::Error) -> DbErr {
        DbErr::Exec(RuntimeErr::SqlxError(Arc::new(err)))
    }

    fn query(err: sqlx::Error) -> DbErr {
        DbErr::Query(RuntimeErr::SqlxError(Arc::new(err)))
    }

    #[test]
    fn lost_connections_are_unavailable() {
        let io = |kind| sqlx::Error::Io(std::io::Error::from(kind));
        let unavailable = [
            exec(io(std::io::ErrorKind::UnexpectedEof)),
            query(io(std::io::ErrorKind::ConnectionReset)),
            query(io(std::io::ErrorKind::BrokenPipe)),
            query(sqlx::Error::PoolTimedOut),
            exec(sqlx::Error::PoolClosed),
            exec(sqlx::Error::WorkerCrashed),
            query(sqlx::Error::Protocol(
                "connection closed by the server".into(),
            )),
            DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
            DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
            DbErr::Conn(RuntimeErr::Internal("refused".into())),
        ];
        for err in unavailable {
            let text = err.to_string();
            assert!(
                StoreError::from(err).is_unavailable(),
                "{text} should be unavailable"
            );
        }
    }

    #[test]
    fn failures_of_the_request_are_not_unavailable() {
        let others = [
            query(sqlx::Error::RowNotFound),
            query(sqlx::Error::Protocol("unexpected message type 'Z'".into())),
            exec(sqlx::Error::ColumnNotFound("x".into())),
            DbErr::Custom("bug".into()),
            DbErr::RecordNotFound("x".into()),
        ];
        for err in others {
            assert_eq!(classify(&err), Class::Other, "{err}");
            assert!(matches!(StoreError::from(err), StoreError::Database(_)));
        }
    }

    #[test]
    fn sqlite_codes() {
        // Primary codes and extended ones: BUSY_RECOVERY 261, BUSY_SNAPSHOT 517,
        // BUSY_TIMEOUT 773, LOCKED_SHAREDCACHE 262, IOERR_FSYNC 1034, READONLY_DBMOVED 1032.
        for code in [
            "5", "261", "517", "773", "6", "262", "7", "8", "1032", "10", "1034", "13",
        ] {
            assert_eq!(sqlite_class(code), Class::Unavailable, "{code}");
        }
        // ERROR, CONSTRAINT_UNIQUE 2067, CONSTRAINT_TRIGGER 1811, CORRUPT, NOTADB, MISMATCH.
        for code in ["1", "2067", "1811", "11", "26", "20", "", "x"] {
            assert_eq!(sqlite_class(code), Class::Other, "{code}");
        }
    }

    #[test]
    fn a_refused_login_and_a_missing_database_are_told_apart() {
        for code in ["28P01", "28000"] {
            assert_eq!(
                postgres_connect_failure(code),
                Some(ConnectFailure::LoginRefused),
                "{code}"
            );
        }
        assert_eq!(
            postgres_connect_failure("3D000"),
            Some(ConnectFailure::NoSuchDatabase)
        );
        for code in ["08006", "57P03", "42P01", ""] {
            assert_eq!(postgres_connect_failure(code), None, "{code}");
        }
        let refused = StoreError::Unavailable(DbErr::Conn(RuntimeErr::SqlxError(Arc::new(
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        ))));
        assert_eq!(refused.connect_failure(), Some(ConnectFailure::Refused));
        let timed_out = StoreError::Unavailable(DbErr::Conn(RuntimeErr::SqlxError(Arc::new(
            sqlx::Error::PoolTimedOut,
        ))));
        assert_eq!(timed_out.connect_failure(), Some(ConnectFailure::TimedOut));
        assert_eq!(StoreError::NotFound.connect_failure(), None);
    }

    #[test]
    fn postgres_sqlstates() {
        for code in [
            "08000", "08003", "08006", "08001", "08004", "08P01", "57P01", "57P02", "57P03",
            "57P05", "53000", "53100", "53200", "53300", "58030", "25006", "40001", "40P01",
            "55P03",
        ] {
            assert_eq!(postgres_class(code), Class::Unavailable, "{code}");
        }
        for code in ["22021", "22P05"] {
            assert_eq!(postgres_class(code), Class::InvalidInput, "{code}");
        }
        for code in [
            "23505", "23503", "42P01", "42601", "22P02", "57014", "57P04", "",
        ] {
            assert_eq!(postgres_class(code), Class::Other, "{code}");
        }
    }
}
