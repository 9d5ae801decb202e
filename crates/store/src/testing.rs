//! Scratch PostgreSQL databases for test suites and benchmarks (feature `test-support`).

use sea_orm::{ConnectionTrait, Database};

use crate::{Store, StoreError};

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
