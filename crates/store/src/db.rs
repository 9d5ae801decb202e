//! Database helpers every module may use: this module uses none of the others.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sqlx::postgres::PgSslMode;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};

/// How durable SQLite commits are. PostgreSQL ignores this (its own `synchronous_commit` rules).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SqliteSync {
    /// `synchronous = FULL`: a commit survives power loss. The default, because a 200 from
    /// ingestion promises that the events are stored.
    #[default]
    Full,
    /// `synchronous = NORMAL`: faster; in WAL mode a power loss may drop the last commits
    /// (never corrupts). An operator's informed choice.
    Normal,
}

/// `auth.lease_ms`'s default: three seconds.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(3);

/// A database URL, which may hold a password: kept for connections opened later (a replica's
/// listener), never shown.
#[derive(Clone)]
pub(crate) struct DbUrl(pub(crate) std::sync::Arc<str>);

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbUrl(..)")
    }
}

/// Options for opening a [`Store`](crate::Store).
#[derive(Clone, Copy, Debug)]
pub struct StoreOptions {
    /// Connections in the pool (for SQLite: readers; writes always go through one connection).
    pub max_connections: u32,
    /// SQLite durability.
    pub sqlite_sync: SqliteSync,
    /// How long a statement waits for a lock held by another process (SQLite) or for a pooled
    /// connection, before failing.
    pub busy_timeout: Duration,
    /// How long a replica may serve keys from memory without renewing its lease
    /// (`auth.lease_ms`), and so the longest a revocation waits for a replica that does not
    /// answer. Every process on one database must use the same value.
    pub lease: Duration,
    /// Most active keys (neither revoked nor expired) one account may hold
    /// (`limits.max_active_keys`): creating or rolling past it is refused.
    pub max_active_keys: u32,
    /// Most pending invitations (neither accepted, withdrawn nor expired) one account may
    /// have (`limits.max_pending_invitations`): inviting one more e-mail is refused.
    pub max_pending_invitations: u32,
}

/// The shortest lease a store accepts: shorter, and renewals could not keep up.
pub const MIN_LEASE: Duration = Duration::from_millis(100);
/// The longest lease a store accepts: every revocation may wait this long.
pub const MAX_LEASE: Duration = Duration::from_secs(60);

impl StoreOptions {
    /// Checks the options a store runs with: the lease within [`MIN_LEASE`]..=[`MAX_LEASE`]
    /// (a zero lease would let a replica serve from memory for ever, a huge one would hold
    /// every revocation), and at least one connection.
    ///
    /// ```
    /// use std::time::Duration;
    /// use agentvista_store::StoreOptions;
    ///
    /// assert!(StoreOptions::default().validate().is_ok());
    /// let zero = StoreOptions { lease: Duration::ZERO, ..StoreOptions::default() };
    /// assert!(zero.validate().is_err());
    /// ```
    ///
    /// # Errors
    /// [`StoreError::InvalidOptions`](crate::StoreError::InvalidOptions), naming the option.
    pub fn validate(&self) -> Result<(), crate::StoreError> {
        if !(MIN_LEASE..=MAX_LEASE).contains(&self.lease) {
            return Err(crate::StoreError::InvalidOptions(format!(
                "lease: must be {} to {} ms, not {} ms",
                MIN_LEASE.as_millis(),
                MAX_LEASE.as_millis(),
                self.lease.as_millis()
            )));
        }
        if self.max_connections == 0 {
            return Err(crate::StoreError::InvalidOptions(
                "max_connections: must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            sqlite_sync: SqliteSync::Full,
            busy_timeout: Duration::from_secs(5),
            lease: DEFAULT_LEASE,
            max_active_keys: 1000,
            max_pending_invitations: 100,
        }
    }
}

/// Pool options for `url`: SQLite gets WAL, the chosen `synchronous`, foreign keys and a busy
/// timeout on every connection; PostgreSQL on this host gets no TLS unless asked for (see
/// [`plain_on_loopback`]).
pub(crate) fn pool_options(
    url: &str,
    max_connections: u32,
    options: StoreOptions,
) -> ConnectOptions {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(options.busy_timeout.max(Duration::from_secs(1)))
        .sqlx_logging(false);
    let sync = match options.sqlite_sync {
        SqliteSync::Full => SqliteSynchronous::Full,
        SqliteSync::Normal => SqliteSynchronous::Normal,
    };
    let busy = options.busy_timeout;
    opts.map_sqlx_sqlite_opts(move |o| {
        o.journal_mode(SqliteJournalMode::Wal)
            .synchronous(sync)
            .foreign_keys(true)
            .busy_timeout(busy)
    });
    let asked = url.contains("sslmode=") || std::env::var_os("PGSSLMODE").is_some();
    opts.map_sqlx_postgres_opts(move |o| {
        if plain_on_loopback(o.get_host(), o.get_ssl_mode(), asked) {
            o.ssl_mode(PgSslMode::Disable)
        } else {
            o
        }
    });
    opts
}

/// Whether a PostgreSQL connection to `host` goes without TLS: when nobody asked for a mode
/// (`asked`: the URL's `sslmode` or `PGSSLMODE`), the driver's default (`prefer`) would use TLS
/// wherever the server offers it — and over loopback TLS protects nothing but costs a stall:
/// the driver sets no `TCP_NODELAY`, so a statement larger than one TLS record (16 KiB) leaves
/// in several writes, each after the first waiting for the server's delayed acknowledgement
/// (about 40 ms). An explicit mode is always kept.
fn plain_on_loopback(host: &str, mode: PgSslMode, asked: bool) -> bool {
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    !asked && loopback && matches!(mode, PgSslMode::Prefer)
}

/// Times as the databases keep them: PostgreSQL stores microseconds, so does SQLite here, and a
/// value read back then equals the value written.
pub(crate) fn db_time(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// What time it is on the database's clock, read through `db`: PostgreSQL's
/// `clock_timestamp()`, the clock that judges expiry for every replica on the database. On
/// SQLite every process is on one host and shares its clock: `local`, unread.
///
/// # Errors
/// The database's.
pub(crate) async fn db_now(
    db: &impl ConnectionTrait,
    local: DateTime<Utc>,
) -> Result<DateTime<Utc>, DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(local);
    }
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT clock_timestamp() AS now",
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("clock_timestamp() returned no row".into()))?;
    row.try_get("", "now")
}

/// Takes SQLite's write lock at `BEGIN`: a deferred transaction that must upgrade later fails at
/// once under concurrent writers (the busy timeout cannot help). PostgreSQL ignores the mode.
pub(crate) async fn begin_immediate(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// `$first, $first+1, …`: `n` positional placeholders, which both drivers bind in order.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `err` is a unique-constraint violation (on either database).
pub(crate) fn is_unique_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unasked_loopback_connection_goes_without_tls() {
        for host in [
            "127.0.0.1",
            "::1",
            "[::1]",
            "localhost",
            "LOCALHOST",
            "127.0.0.53",
        ] {
            assert!(plain_on_loopback(host, PgSslMode::Prefer, false), "{host}");
        }
        for host in ["10.0.0.5", "db.example.com", "/var/run/postgresql", ""] {
            assert!(!plain_on_loopback(host, PgSslMode::Prefer, false), "{host}");
        }
        assert!(
            !plain_on_loopback("127.0.0.1", PgSslMode::Prefer, true),
            "asked for"
        );
        assert!(!plain_on_loopback("127.0.0.1", PgSslMode::Require, false));
    }
}
