//! [`Store`]: the connection pools, start-up configuration and migrations.
//!
//! `impl Store` is spread over the modules that own each table or operation:
//!
//! | file | methods |
//! | --- | --- |
//! | `store.rs` | `connect`, `connect_with`, `migrate`, `pending_migrations`, `ready`, `is_postgres`, `close`, `record` (accounting), `used` |
//! | `accounts.rs`, `users.rs`, `sessions.rs`, `keys.rs`, `events.rs`, `audit.rs` | the repositories: `accounts()`, `users()`, `sessions()`, `keys()`, `events()`, `audit()` |
//! | `setup.rs` | `create_first_user` |
//! | `daily.rs` | `usage_daily` |
//! | `trace_page.rs` | `plan_trace_page`, `read_trace_page` |
//! | `roll.rs` | `roll` |
//! | `revoke.rs` | `revoke_keys` (every revocation's one transaction and barrier) |
//! | `lookup.rs` | `KeyLookup for Store`, and `revoke_one`, `revoke_reported` on top of `revoke_keys` |
//! | `sweep/mod.rs` | `sweep_retention` |
//!
//! SQL helpers shared by these modules are in `sql.rs` and `db.rs`; the key change log is
//! `changes.rs`.

use std::sync::Arc;
use std::time::Duration;

use agentvista_migrations::{Migrator, MigratorTrait};
use agentvista_quota::{Period, Plans, RecordError, Recorded};
use sea_orm::sqlx::Connection as _;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement};

use crate::barrier::Barrier;
use crate::db::{DbUrl, StoreOptions, pool_options};
use crate::ledger::{EventBatch, Ledger, used_in};
use crate::{AccountId, StoreError};

/// The storage of accounts, users, sessions, keys, events and usage, on SQLite or PostgreSQL.
///
/// Cheap to clone (pools are shared). Reach the tables through the repositories:
/// [`Store::accounts`], [`Store::users`], [`Store::sessions`], [`Store::keys`],
/// [`Store::events`]; usage is recorded by [`Store::record`].
#[derive(Clone, Debug)]
pub struct Store {
    /// Statements that write. On SQLite a single connection: SQLite admits one writer at a
    /// time anyway, and queueing in the pool is fairer and faster than busy-waiting on the lock.
    pub(crate) write: DatabaseConnection,
    /// A pool of readers, on SQLite files only; elsewhere `write` serves reads too.
    read: Option<DatabaseConnection>,
    /// Where accounting runs (on SQLite, through the task that groups concurrent accounting
    /// transactions into one commit).
    pub(crate) ledger: Ledger,
    /// Where the database is, for the connections a replica opens of its own.
    pub(crate) url: DbUrl,
    /// The options the store was opened with.
    pub(crate) options: StoreOptions,
    /// Where revocations wait for every replica (shared by clones).
    pub(crate) barrier: Arc<Barrier>,
}

/// How much longer than the busy timeout [`Store::ready`] waits before it reports the store
/// unavailable: time for the queue ahead of its probe.
const READY_MARGIN: Duration = Duration::from_secs(1);

impl Store {
    /// Opens `url` (`sqlite://…`, `sqlite::memory:` or `postgres://…`) with default options.
    ///
    /// On SQLite this starts the group-commit task on the current tokio runtime, so call it
    /// from within one.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database cannot be reached or opened.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, StoreOptions::default()).await
    }

    /// Opens `url` with `options`. SQLite gets WAL, the chosen `synchronous`, foreign keys and
    /// a busy timeout on every connection.
    ///
    /// # Errors
    /// [`StoreError::InvalidOptions`] when `options` do not pass [`StoreOptions::validate`];
    /// [`StoreError::Unavailable`] when the database cannot be reached or opened.
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Self, StoreError> {
        options.validate()?;
        if !url.starts_with("sqlite:") {
            let write = Database::connect(pool_options(url, options.max_connections, options))
                .await
                .map_err(StoreError::Unavailable)?;
            // PostgreSQL commits concurrent transactions in parallel; no grouping needed.
            return Ok(Store::assemble(url, options, write, None, false));
        }
        if url.contains(":memory:") || url.contains("mode=memory") {
            // Every connection to an in-memory database is a database of its own: share one.
            // It is never closed for a fault, which would lose the database (so after a failed
            // rollback writes keep failing, and readiness says so).
            let write = Database::connect(pool_options(url, 1, options))
                .await
                .map_err(StoreError::Unavailable)?;
            return Ok(Store::assemble(url, options, write, None, true));
        }
        let mut write_options = pool_options(url, 1, options);
        write_options.map_sqlx_sqlite_pool_opts(|pool| {
            pool.after_release(|conn, _| {
                Box::pin(async move {
                    // A transaction whose rollback failed (SQLite had rolled it back by itself
                    // already, or the disk failed) leaves sqlx counting an open transaction,
                    // and every later BEGIN on this connection would fail: close it, the pool
                    // opens a fresh one. sqlx lowers its count only when its worker has run a
                    // COMMIT or ROLLBACK, so a count of zero is final and costs nothing to
                    // read (no round trip on the write path: this runs after every write).
                    // Above zero, the ping first runs a rollback still queued by a
                    // transaction that was dropped unfinished, so that the count is current.
                    if !conn.is_in_transaction() {
                        return Ok(true);
                    }
                    conn.ping().await?;
                    Ok(!conn.is_in_transaction())
                })
            })
        });
        let write = Database::connect(write_options)
            .await
            .map_err(StoreError::Unavailable)?;
        let read = Database::connect(pool_options(url, options.max_connections, options))
            .await
            .map_err(StoreError::Unavailable)?;
        Ok(Store::assemble(url, options, write, Some(read), true))
    }

    /// The store over its pools; `grouped`: accounting goes through the group-commit task.
    fn assemble(
        url: &str,
        options: StoreOptions,
        write: DatabaseConnection,
        read: Option<DatabaseConnection>,
        grouped: bool,
    ) -> Store {
        Store {
            ledger: Ledger::new(write.clone(), grouped),
            write,
            read,
            url: DbUrl(url.into()),
            options,
            barrier: Arc::new(Barrier::new(options.lease)),
        }
    }

    /// Whether this is a SQLite file (a pool of readers beside the one writer), where other
    /// processes may open connections of their own.
    pub(crate) fn is_sqlite_file(&self) -> bool {
        self.read.is_some()
    }

    /// The pool for statements that only read.
    pub(crate) fn reader(&self) -> &DatabaseConnection {
        self.read.as_ref().unwrap_or(&self.write)
    }

    /// Applies every pending migration.
    ///
    /// # Errors
    /// [`StoreError`] when a migration fails; the database is then left as the failing
    /// migration's transaction (PostgreSQL) or statement (SQLite) left it.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        Migrator::up(&self.write, None).await?;
        Ok(())
    }

    /// How many migrations this version has that the database has not applied (0: up to
    /// date). Nothing is changed.
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn pending_migrations(&self) -> Result<usize, StoreError> {
        Ok(Migrator::get_pending_migrations(&self.write).await?.len())
    }

    /// Checks that the store can serve reads and writes now, for `/readyz`:
    ///
    /// - SQLite: the read pool answers, and a probe queued to the writer task is answered
    ///   after the writer took SQLite's write lock (`BEGIN IMMEDIATE`) and let it go — so a
    ///   dead or stuck writer, or a lock held by another process past the busy timeout, fails.
    /// - PostgreSQL: a query on the pool answers, and the server is neither in recovery
    ///   (`pg_is_in_recovery()`) nor read-only (`transaction_read_only`): a standby cannot
    ///   take writes.
    ///
    /// Nothing is written. The whole check gives up after the busy timeout plus one second.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot serve reads or writes (including when
    /// the check timed out), [`StoreError::Database`] for an unexpected failure.
    pub async fn ready(&self) -> Result<(), StoreError> {
        let limit = self.options.busy_timeout.saturating_add(READY_MARGIN);
        match tokio::time::timeout(limit, self.check_ready()).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable(DbErr::Conn(
                sea_orm::RuntimeErr::Internal(format!(
                    "the readiness check took longer than {} ms",
                    limit.as_millis()
                )),
            ))),
        }
    }

    async fn check_ready(&self) -> Result<(), StoreError> {
        if let Some(committer) = self.ledger.committer() {
            self.reader().ping().await?;
            committer.probe().await?;
            return Ok(());
        }
        let probe = Statement::from_string(
            DbBackend::Postgres,
            "SELECT pg_is_in_recovery() AS recovery, \
             current_setting('transaction_read_only') = 'on' AS read_only",
        );
        let row = self.write.query_one_raw(probe).await?.ok_or_else(|| {
            StoreError::Database(DbErr::Custom("the readiness query returned no row".into()))
        })?;
        let recovery: bool = row.try_get("", "recovery")?;
        let read_only: bool = row.try_get("", "read_only")?;
        if recovery || read_only {
            return Err(StoreError::Unavailable(DbErr::Custom(
                "the PostgreSQL server takes no writes (in recovery or read-only)".into(),
            )));
        }
        Ok(())
    }

    /// Waits for the revocation barrier of change `seq`, committed at `committed`: every live
    /// replica has applied it, or one lease has passed (`docs/architecture.md`).
    pub(crate) async fn await_barrier(&self, seq: i64, committed: tokio::time::Instant) {
        self.barrier.wait(self.reader(), seq, committed).await;
    }

    /// Whether this store runs on PostgreSQL (else SQLite).
    #[must_use]
    pub fn is_postgres(&self) -> bool {
        self.write.get_database_backend() == DbBackend::Postgres
    }

    /// Closes the pools, waiting for connections in use to be returned.
    ///
    /// # Errors
    /// When a pool fails to close cleanly.
    pub async fn close(self) -> Result<(), StoreError> {
        if let Some(read) = self.read {
            read.close().await?;
        }
        self.write.close().await?;
        Ok(())
    }
}

impl Store {
    /// Stores `batch`'s events that are new for `account` and counts exactly them in `period`,
    /// only if they fit the allowance that `plans` give the account's plan and spend cap — all
    /// or nothing, in one transaction that holds under any concurrency and across processes
    /// sharing the database. The plan and cap are read inside that transaction, ordered with
    /// any change of them: once a change has committed, no batch is counted against the old
    /// allowance. So the usage count always equals the events stored
    /// (`docs/architecture.md`, "The accounting transaction").
    ///
    /// # Errors
    /// [`RecordError::Exceeded`] with the usage seen, or [`RecordError::UnknownPlan`]: nothing
    /// stored or counted. [`RecordError::Storage`] when the database failed (nothing stored).
    pub async fn record(
        &self,
        account: AccountId,
        period: Period,
        plans: &Plans,
        batch: EventBatch,
    ) -> Result<Recorded, RecordError<StoreError>> {
        self.ledger.record(account, period, plans, batch).await
    }

    /// Events counted for `account` in `period` so far (0 for a period not yet started).
    ///
    /// # Errors
    /// [`StoreError`] from the database.
    pub async fn used(&self, account: AccountId, period: Period) -> Result<u64, StoreError> {
        Ok(used_in(self.reader(), account, period).await?)
    }
}
