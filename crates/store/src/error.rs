//! [`StoreError`]: everything the store can fail with, sea-orm kept inside.

use sea_orm::{DbErr, RuntimeErr, sqlx};

/// Why a store operation failed. `DbErr` never leaves this crate as a type, only as a source.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (HTTP 503 `unavailable`, never 401).
    #[error("the database is unavailable")]
    Unavailable(#[source] DbErr),
    /// Any other database failure (HTTP 500; logged with its source chain).
    #[error("a database operation failed")]
    Database(#[source] DbErr),
    /// No such row for this account (HTTP 404 `not_found`).
    #[error("not found")]
    NotFound,
    /// A user with this e-mail address exists already.
    #[error("a user with this e-mail address exists already")]
    EmailTaken,
    /// First-run setup after a user exists (HTTP 404: the setup is gone).
    #[error("this installation is set up already")]
    AlreadySetUp,
    /// Not an e-mail address (HTTP 400).
    #[error("not an e-mail address")]
    InvalidEmail,
    /// A stored value that does not parse: a bug or a manual edit, never user input.
    #[error("stored {what} is malformed")]
    Corrupt {
        /// The column at fault.
        what: &'static str,
    },
    /// No key could be generated (the OS refused randomness, or prefixes kept colliding).
    #[error("no API key could be generated")]
    KeyGeneration(#[source] Option<agentvista_keys::GenerateError>),
}

impl StoreError {
    /// Whether the database could not be reached at all (as opposed to refusing a statement).
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        if is_connection_failure(&err) {
            StoreError::Unavailable(err)
        } else {
            StoreError::Database(err)
        }
    }
}

fn is_connection_failure(err: &DbErr) -> bool {
    match err {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            matches!(
                **e,
                sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
            )
        }
        _ => false,
    }
}

pub(crate) fn is_unique_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}
