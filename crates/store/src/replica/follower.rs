//! The follower: one task per replica that applies the key change log to the cache and renews
//! the replica's lease (`docs/architecture.md`, rules 2, 3 and 8). Nothing else renews.
//!
//! A round: note the boot clock; if the lease lapsed, stop serving and flush; read the head and
//! the changes after `applied` in one snapshot; evict their keys; renew conditionally. Rounds
//! run when PostgreSQL's `LISTEN` wakes them, when a poll of the head finds it moved (every
//! few milliseconds on SQLite, where the CLI is another process and cannot notify), and at
//! least every third of a lease.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DbBackend;
use sea_orm::sqlx::postgres::PgListener;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::Inner;
use super::clock::boot_nanos;
use super::lease::{Lease, RoundStart};
use super::rows::{self, CHANGES_PER_ROUND, Renewal};
use crate::StoreError;
use crate::changes::CHANNEL;

/// How often the head is polled on SQLite.
const SQLITE_POLL: Duration = Duration::from_millis(5);
/// How often the head is polled on PostgreSQL, where `LISTEN` wakes rounds: a fallback only.
const POSTGRES_POLL: Duration = Duration::from_millis(250);
/// How long to wait before trying again after a failed round or a failed listener connection.
const RETRY: Duration = Duration::from_millis(100);
/// How often rows of dead replicas are looked for.
const CLEANUP_EVERY: Duration = Duration::from_secs(60);

/// What wakes a round besides the clock.
#[derive(Debug, Clone, Copy)]
enum Wake {
    /// A change was announced.
    Change,
    /// The listener connected or reconnected: announcements may have been lost meanwhile.
    Connected,
}

/// How a round ended.
enum Outcome {
    Renewed,
    /// A change committed after the read, or the row had to be re-registered: go again.
    Again,
}

pub(super) async fn follow(inner: Arc<Inner>) {
    let lease_length = inner.store.options.lease;
    let mut lease = Lease::new(u64::try_from(lease_length.as_nanos()).unwrap_or(u64::MAX));
    let renew_every = lease_length / 3;
    let mut stop = inner.stop.subscribe();
    let postgres = inner.store.write.get_database_backend() == DbBackend::Postgres;
    let (wake_tx, mut wake) = mpsc::channel(4);
    if postgres {
        tokio::spawn(listen(
            Arc::clone(&inner.store.url.0),
            wake_tx,
            inner.stop.subscribe(),
        ));
    } else {
        drop(wake_tx);
    }
    if postgres {
        // Listen before the first catch-up read, so that no announcement after it is missed;
        // without a listener within a lease, start anyway and poll.
        let _ = tokio::time::timeout(lease_length, wake.recv()).await;
    }
    let poll = if postgres { POSTGRES_POLL } else { SQLITE_POLL };
    let mut due = true;
    let mut last_renewal: Option<Instant> = None;
    let mut last_cleanup: Option<Instant> = None;
    let mut failing = false;
    let mut listening = postgres;
    loop {
        if *stop.borrow() {
            return;
        }
        let renewal_due = last_renewal.is_none_or(|at| at.elapsed() >= renew_every);
        if due || renewal_due {
            let round = tokio::time::timeout(renew_every.max(RETRY), run_round(&inner, &mut lease));
            match round.await {
                Ok(Ok(Outcome::Renewed)) => {
                    // A renewal that only re-acquired the lease: the next round, at once,
                    // lets the cache serve.
                    due = !inner.keys.serving(boot_nanos());
                    last_renewal = Some(Instant::now());
                    if failing {
                        tracing::info!("replica lease renewed again");
                        failing = false;
                    }
                }
                Ok(Ok(Outcome::Again)) => continue,
                Ok(Err(err)) => {
                    if !failing {
                        tracing::warn!(error = %err, "replica: cannot follow the key change log; keys are served from memory only until the lease runs out");
                    }
                    failing = true;
                }
                Err(_) => {
                    if !failing {
                        tracing::warn!(
                            "replica: a follower round timed out; keys are served from memory only until the lease runs out"
                        );
                    }
                    failing = true;
                }
            }
            inner.serving.send_if_modified(|on| {
                let now = inner.keys.serving(boot_nanos());
                std::mem::replace(on, now) != now
            });
            if last_cleanup.is_none_or(|at| at.elapsed() >= CLEANUP_EVERY) && !failing {
                last_cleanup = Some(Instant::now());
                match rows::delete_dead(&inner.renewer).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(rows = n, "removed the rows of replicas dead for a day")
                    }
                    Err(err) => {
                        tracing::debug!(error = %err, "could not remove dead replicas' rows")
                    }
                }
            }
        }
        let next_renewal = last_renewal.map_or_else(Instant::now, |at| at + renew_every);
        // While rounds fail, retry every RETRY whatever is overdue: a round that fails at once
        // (a read-only server, a corrupt row) must not spin.
        let sleep_until = if failing {
            Instant::now() + RETRY
        } else {
            (Instant::now() + poll).min(next_renewal)
        };
        tokio::select! {
            _ = stop.changed() => return,
            woken = wake.recv(), if listening => match woken {
                Some(Wake::Change) => due = true,
                Some(Wake::Connected) => {
                    // Announcements may have been lost while disconnected.
                    inner.keys.flush(None);
                    due = true;
                }
                // The listener ended (it only does when stopping): poll from now on.
                None => listening = false,
            },
            () = tokio::time::sleep_until(sleep_until) => {
                if !failing && Instant::now() < next_renewal {
                    match rows::head(inner.store.reader()).await {
                        Ok(head) => due = head != inner.keys.applied(),
                        Err(_) => due = true,
                    }
                }
            }
        }
    }
}

/// One round: apply the log, then renew.
async fn run_round(inner: &Inner, lease: &mut Lease) -> Result<Outcome, StoreError> {
    let sent = boot_nanos();
    if lease.begin(sent) == RoundStart::Lapsed {
        if inner.keys.serving(sent) || inner.keys.len() > 0 {
            tracing::warn!("replica lease lapsed: the key cache is flushed");
        }
        inner.keys.stop_serving();
        inner.keys.flush(None);
    }
    let applied = inner.keys.applied();
    let (head, changes) = rows::changes_after(inner.store.reader(), applied).await?;
    let now_applied = if head < applied {
        // The counter went backwards (a restored backup, a failover): trust nothing held.
        tracing::warn!(
            head,
            applied,
            "the key change log went backwards: the key cache is flushed"
        );
        inner.keys.flush(Some(head));
        head
    } else {
        let upto = if changes.len() >= CHANGES_PER_ROUND {
            changes.last().map_or(head, |(seq, _)| *seq)
        } else {
            head
        };
        if upto != applied {
            inner
                .keys
                .evict(changes.iter().map(|(_, hash)| hash), Some(upto));
        }
        upto
    };
    match rows::renew(
        &inner.renewer,
        &inner.id,
        now_applied,
        inner.store.options.lease,
    )
    .await?
    {
        Renewal::Renewed(db_now) => {
            inner.clock.read(db_now, sent);
            if let Some(deadline) = lease.renewed(sent) {
                inner.keys.serve_until(deadline);
            }
            Ok(Outcome::Renewed)
        }
        Renewal::Behind => Ok(Outcome::Again),
        Renewal::Gone => {
            tracing::warn!(replica = %inner.label, "this replica's row was gone (removed as dead): registering again");
            lease.lost();
            inner.keys.stop_serving();
            let sent = boot_nanos();
            let (head, db_now) = rows::register(
                &inner.renewer,
                &inner.id,
                &inner.label,
                inner.store.options.lease,
            )
            .await?;
            inner.clock.read(db_now, sent);
            inner.keys.flush(Some(head));
            Ok(Outcome::Again)
        }
    }
}

/// Listens for announced changes on a connection of its own (never a pooled one), and says
/// so each time it (re)connects — after `LISTEN`, so that the round it wakes catches up on
/// everything an announcement could have missed.
async fn listen(url: Arc<str>, wake: mpsc::Sender<Wake>, mut stop: watch::Receiver<bool>) {
    loop {
        let connected = async {
            let mut listener = PgListener::connect(&url).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sea_orm::sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            _ = stop.changed() => return,
            connected = connected => match connected {
                Ok(listener) => listener,
                Err(err) => {
                    tracing::debug!(error = %err, "replica: cannot LISTEN for key changes; polling");
                    tokio::select! {
                        _ = stop.changed() => return,
                        () = tokio::time::sleep(RETRY) => continue,
                    }
                }
            },
        };
        if wake.send(Wake::Connected).await.is_err() {
            return;
        }
        loop {
            let received = tokio::select! {
                _ = stop.changed() => return,
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(_)) => {
                    // Full: a round is due already.
                    let _ = wake.try_send(Wake::Change);
                }
                // Lost and re-established (LISTEN included): catch up.
                Ok(None) => {
                    if wake.send(Wake::Connected).await.is_err() {
                        return;
                    }
                }
                Err(err) => {
                    tracing::debug!(error = %err, "replica: the LISTEN connection failed; reconnecting");
                    break;
                }
            }
        }
    }
}
