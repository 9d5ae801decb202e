//! The test kit the workspace's suites and benchmarks share (feature `test-support`): a
//! database of a test's own on either engine ([`ScratchDb`]), [`on_both!`](crate::on_both)
//! to run a test on both, and a seeded random source ([`Rng`]).

use std::path::Path;

use sea_orm::{ConnectionTrait, Database};

use crate::{Store, StoreError};

/// SQL for the database's own clock in milliseconds since the epoch (the clock leases are
/// kept in), for tests that compare with a lease as the database holds it.
#[must_use]
pub fn now_ms_sql(backend: sea_orm::DbBackend) -> &'static str {
    crate::sql::now_ms_sql(backend)
}

/// The environment variable naming a PostgreSQL server the suites may create databases on.
pub const POSTGRES_URL_VAR: &str = "AGENTVISTA_TEST_POSTGRES_URL";

/// The admin URL from [`POSTGRES_URL_VAR`], or `None` after saying on standard error that
/// `suite` skips. The notice is written past the test harness's output capture, so that a
/// plain `cargo test` shows it.
#[must_use]
pub fn postgres_admin_url(suite: &str) -> Option<String> {
    use std::io::Write;
    let url = std::env::var(POSTGRES_URL_VAR).ok();
    if url.is_none() {
        let _ = writeln!(
            std::io::stderr(),
            "skipped: set {POSTGRES_URL_VAR} to run the PostgreSQL {suite}"
        );
    }
    url
}

/// Creates an empty database named `<prefix>_<16 random hex>` on the server of `admin_url` (a
/// URL whose user may create databases); returns its URL and name.
///
/// # Errors
/// [`StoreError`] when the server cannot be reached or refuses.
pub async fn create_database(
    admin_url: &str,
    prefix: &str,
) -> Result<(String, String), StoreError> {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|_| StoreError::KeyGeneration(None))?;
    let name = format!("{prefix}_{}", hex::encode(random));
    let admin = Database::connect(admin_url).await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await?;
    admin.close().await?;
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url, |(base, _)| base);
    Ok((format!("{base}/{name}"), name))
}

/// Drops a database made by [`create_database`], disconnecting whoever still uses it.
///
/// # Errors
/// [`StoreError`] when the server cannot be reached or refuses.
pub async fn drop_database(admin_url: &str, name: &str) -> Result<(), StoreError> {
    let admin = Database::connect(admin_url).await?;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await?;
    admin.close().await?;
    Ok(())
}

/// The pool through which `store` writes (on SQLite its single writer connection), for
/// benchmarks that set a plain statement beside the store's own on the same connection — the
/// same settings and, on SQLite, the same page cache, which another connection would have to
/// reload after every write of the store's.
#[must_use]
pub fn write_pool(store: &Store) -> &sea_orm::DatabaseConnection {
    &store.write
}

/// The database engine a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// A SQLite file: always available.
    Sqlite,
    /// A fresh database on the server [`POSTGRES_URL_VAR`] names: only when it is set.
    Postgres,
}

/// A database of a test's own, with a temporary directory beside it: a SQLite file in that
/// directory, or a fresh PostgreSQL database, dropped with the guard — also when the test
/// fails (from a thread of its own, since the test's runtime may be unwinding).
#[derive(Debug)]
pub struct ScratchDb {
    url: String,
    dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

impl ScratchDb {
    /// A database on `engine`; `None` when PostgreSQL is asked for and not configured, after
    /// saying on standard error that `suite` skips it.
    ///
    /// # Panics
    /// When the temporary directory or the PostgreSQL database cannot be made: a test kit has
    /// no better answer.
    pub async fn new(engine: Engine, suite: &str) -> Option<ScratchDb> {
        match engine {
            Engine::Sqlite => Some(ScratchDb::sqlite()),
            Engine::Postgres => {
                #[allow(clippy::expect_used)]
                let dir = tempfile::tempdir().expect("a temporary directory");
                let admin_url = postgres_admin_url(suite)?;
                #[allow(clippy::expect_used)]
                let (url, name) = create_database(&admin_url, "agentvista_test")
                    .await
                    .expect("a scratch PostgreSQL database");
                Some(ScratchDb {
                    url,
                    dir,
                    postgres: Some((admin_url, name)),
                })
            }
        }
    }

    /// A SQLite file, `agentvista.db`, in a temporary directory of its own.
    ///
    /// # Panics
    /// When the temporary directory cannot be made.
    #[must_use]
    pub fn sqlite() -> ScratchDb {
        #[allow(clippy::expect_used)]
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("agentvista.db").display()
        );
        ScratchDb {
            url,
            dir,
            postgres: None,
        }
    }

    /// The database's URL (SQLite: with `mode=rwc`).
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The temporary directory that goes with the database (SQLite: where its file is).
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The engine.
    #[must_use]
    pub fn engine(&self) -> Engine {
        if self.postgres.is_some() {
            Engine::Postgres
        } else {
            Engine::Sqlite
        }
    }

    /// On PostgreSQL, the admin URL and the database's name.
    #[must_use]
    pub fn postgres_names(&self) -> Option<(&str, &str)> {
        self.postgres
            .as_ref()
            .map(|(admin, name)| (admin.as_str(), name.as_str()))
    }

    /// Drops the database now, on the caller's runtime (the guard would otherwise do it when
    /// it goes).
    ///
    /// # Errors
    /// [`StoreError`] when the server refuses.
    pub async fn drop_now(mut self) -> Result<(), StoreError> {
        match self.postgres.take() {
            Some((admin_url, name)) => drop_database(&admin_url, &name).await,
            None => Ok(()),
        }
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.postgres.take() {
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(runtime) = runtime {
                    let _ = runtime.block_on(drop_database(&admin_url, &name));
                }
            })
            .join();
        }
    }
}

/// Registers tests on both engines: for each `$test`, an async fn of the invoking module,
/// `$test::sqlite` and `$test::postgres` call `run($test, Engine::…)` — the suite's own
/// `run`, in scope where the macro is invoked, which makes the fixture the test takes from a
/// [`ScratchDb`] of that engine (and returns at once when there is none).
///
/// ```ignore
/// async fn run(test: impl AsyncFnOnce(&TestDb), engine: Engine) { … }
///
/// async fn keys_are_listed(db: &TestDb) { … }
/// agentvista_store::on_both!(keys_are_listed);
/// ```
#[macro_export]
macro_rules! on_both {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::run(super::$test, $crate::testing::Engine::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::run(super::$test, $crate::testing::Engine::Postgres).await;
            }
        }
    )*};
}

/// A seeded random source for tests (xorshift64): fast, no dependency, and reproducible —
/// [`Rng::seeded`] prints its seed, which [`Rng::from_seed`] replays.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a random seed, printed on standard error.
    ///
    /// # Panics
    /// When the OS random source cannot be read.
    #[must_use]
    pub fn seeded() -> Rng {
        #[allow(clippy::expect_used)]
        let seed = getrandom::u64().expect("the OS random source");
        eprintln!("rng seed {seed:#x}");
        Rng::from_seed(seed)
    }

    /// The generator of `seed` (a zero seed is made odd: xorshift never leaves zero).
    #[must_use]
    pub fn from_seed(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// The next value, below `n` (which must not be 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}
