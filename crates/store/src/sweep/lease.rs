//! One sweeper at a time: a row of `sweeps` leased on the database's clock, taken and renewed
//! by a conditional `UPDATE` (no advisory lock, which would stay with one pooled connection and
//! outlive the sweep that took it).

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};

use crate::sql::{now_ms_sql, statement};

/// How long a lease lasts unless renewed: long beside one batch, short enough that a replica
/// that died mid-sweep is replaced within the next sweep interval.
const LEASE_MS: i64 = 60_000;

/// A lease on one sweep's row, held by a random id of this run.
pub(super) struct Lease<'a> {
    db: &'a DatabaseConnection,
    name: &'static str,
    holder: String,
}

impl<'a> Lease<'a> {
    pub(super) fn new(db: &'a DatabaseConnection, name: &'static str) -> Result<Self, DbErr> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| DbErr::Custom(format!("no randomness: {e}")))?;
        Ok(Lease {
            db,
            name,
            holder: hex::encode(bytes),
        })
    }

    /// Takes the lease, or renews it if this run holds it; `false` when another holds it.
    pub(super) async fn take(&self) -> Result<bool, DbErr> {
        let backend = self.db.get_database_backend();
        let now = now_ms_sql(backend);
        let taken = self
            .db
            .execute_raw(statement(
                backend,
                &format!(
                    "UPDATE sweeps SET holder = $1, lease_until = {now} + $2 \
                     WHERE name = $3 AND (holder = $1 OR lease_until < {now})"
                ),
                [
                    self.holder.clone().into(),
                    LEASE_MS.into(),
                    self.name.into(),
                ],
            ))
            .await?;
        Ok(taken.rows_affected() == 1)
    }

    /// Gives the lease back so that the next sweep, on any replica, need not wait it out.
    pub(super) async fn release(&self) -> Result<(), DbErr> {
        let backend = self.db.get_database_backend();
        self.db
            .execute_raw(statement(
                backend,
                "UPDATE sweeps SET lease_until = 0 WHERE name = $1 AND holder = $2",
                [self.name.into(), self.holder.clone().into()],
            ))
            .await?;
        Ok(())
    }
}
