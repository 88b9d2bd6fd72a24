//! The listing pipeline: a producer task fetches pages, the blocking pool
//! flattens them, and the pull writes them in turn into the mirror: one
//! page per transaction while pages arrive slower than they are written,
//! several at once when the writer fell behind (group commit).

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::watermark::note_first_answer;
use super::{PullOptions, PullParts, PullReport, TeamsMode};
use crate::cliq::client::{CliqClient, ListEvent};
use crate::cliq::error::CliqError;
use crate::cliq::models::{ListUsersParams, UserStatus};
use crate::cliq::Endpoint;
use crate::clock::Clock;
use crate::mirror::users::{ChangeSource, FlatUser};
use crate::mirror::StoreError;
use crate::sync::progress::Tracker;

pub(super) enum Listing {
    Complete,
    Stopped,
}

/// What the listing producer hands over.
pub(super) enum Fetched {
    /// A page being flattened (in order: the consumer awaits each in turn).
    Page(tokio::task::JoinHandle<Result<Vec<FlatUser>, CliqError>>),
    Restarted,
    /// Before the first page: its `Date` header and our clock on arrival.
    FirstAnswer(Option<DateTime<Utc>>, DateTime<Utc>),
    Failed(CliqError),
}

/// Aborts the task when dropped (a stopped or aborted pull stops fetching).
pub(super) struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl AbortOnDrop {
    async fn finish(mut self) -> Result<(), tokio::task::JoinError> {
        match self.0.take() {
            Some(handle) => handle.await,
            None => Ok(()),
        }
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(handle) = &self.0 {
            handle.abort();
        }
    }
}

/// Flatten a page as received. A user without an id is skipped with a
/// warning; one that cannot be read fails the page (and so the listing:
/// skipping them would later mark them removed).
pub(super) fn flatten(
    users: &[Box<serde_json::value::RawValue>],
) -> Result<Vec<FlatUser>, CliqError> {
    let mut out = Vec::with_capacity(users.len());
    for (i, u) in users.iter().enumerate() {
        match FlatUser::from_raw_json(u.get()) {
            Ok(Some(flat)) => out.push(flat),
            Ok(None) => tracing::warn!("a listed user has no id; skipped"),
            Err(e) => {
                return Err(CliqError::Decode {
                    endpoint: Endpoint::ListUsers,
                    message: format!("list users: item {i}: {e}"),
                })
            }
        }
    }
    Ok(out)
}

/// Pages the producer may fetch ahead of the writer (the channel's bound):
/// enough for the batches that form while the writer is behind, few enough
/// that memory stays bounded (a flattened page of 100 users is a few
/// hundred KB). Batches stay small anyway: the producer records each
/// request in the quota ledger, a write that takes its turn between the
/// writer's transactions, so it gets at most a page or two ahead. Measured
/// on 100,000 users with quotas lifted: 1,000 pages in about 750
/// transactions with 2 ahead, about 600 with 4, whose peak RSS reached 33 MB.
const PAGES_AHEAD: usize = 2;

/// At most this many pages, or about this many users, are written in one
/// transaction. Every transaction rewrites the same `users_email` index
/// pages into the WAL, so pages already fetched when the writer gets to
/// them are cheaper written together; the cap keeps the write lock (which
/// other processes and the quota ledger wait for) short and a reader's view
/// of the pull's progress fresh.
const GROUP_COMMIT_PAGES: u64 = 20;
const GROUP_COMMIT_USERS: usize = 2_000;

pub(super) enum ListFailure {
    Cliq(CliqError),
    Store(StoreError),
}

pub(super) async fn list_into_mirror(
    parts: &PullParts<'_>,
    opts: &PullOptions,
    params: ListUsersParams,
    run: (i64, ChangeSource, &Tracker),
    cancel: &CancellationToken,
    report: &mut PullReport,
) -> Result<Listing, ListFailure> {
    let (store, client) = (parts.store, parts.client);
    let queue_teams = opts.teams != TeamsMode::Off;
    // Three stages overlap: the producer task fetches page k+2 while page
    // k+1 is flattened (parsed and hashed, on the blocking pool) and page k
    // is written. The channel holds a few pages, so memory stays bounded.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Fetched>(PAGES_AHEAD);
    let listings = listings(params, opts.per_status);
    let producer = spawn_producer(client.clone(), store.clock().clone(), listings, tx);
    // What ended a batch of ready pages, handled next.
    let mut held: Option<Fetched> = None;
    loop {
        if cancel.is_cancelled() {
            return Ok(Listing::Stopped);
        }
        let event = match held.take() {
            Some(event) => Some(event),
            None => tokio::select! {
                biased;
                _ = cancel.cancelled() => return Ok(Listing::Stopped),
                event = rx.recv() => event,
            },
        };
        match event {
            None => {
                // The channel closes when the listing ended; make sure it
                // ended normally (a panicked producer is not a complete listing).
                return match producer.finish().await {
                    Ok(()) => Ok(Listing::Complete),
                    Err(e) => Err(ListFailure::Cliq(CliqError::Decode {
                        endpoint: Endpoint::ListUsers,
                        message: format!("the listing task failed: {e}"),
                    })),
                };
            }
            Some(Fetched::Failed(e)) => return Err(ListFailure::Cliq(e)),
            Some(Fetched::Restarted) => report.restarts += 1,
            Some(Fetched::FirstAnswer(date, ours)) => note_first_answer(client, report, date, ours),
            Some(Fetched::Page(flattening)) => {
                let mut batch = Batch {
                    users: flattened(flattening).await.map_err(ListFailure::Cliq)?,
                    pages: 1,
                };
                held = batch.take_ready(&mut rx).await;
                write_batch(parts, queue_teams, &batch, run, report).await?;
            }
        }
    }
}

/// A flattened page's users, or why it has none.
async fn flattened(
    flattening: tokio::task::JoinHandle<Result<Vec<FlatUser>, CliqError>>,
) -> Result<Vec<FlatUser>, CliqError> {
    flattening.await.unwrap_or_else(|e| {
        Err(CliqError::Decode {
            endpoint: Endpoint::ListUsers,
            message: format!("reading a listed page failed: {e}"),
        })
    })
}

/// Consecutive listed pages written in one transaction, their users in
/// listing order (so one listed twice ends as the later copy).
struct Batch {
    users: Vec<FlatUser>,
    pages: u64,
}

impl Batch {
    /// Add the pages already fetched and flattened, in order, up to the
    /// caps. Never waits for a page that is not ready: the first event
    /// that is not a ready page (one still flattening, a restart, a failed
    /// page) ends the batch and is returned, to be handled next; so the
    /// pages before a failure are written as they were one by one.
    async fn take_ready(
        &mut self,
        rx: &mut tokio::sync::mpsc::Receiver<Fetched>,
    ) -> Option<Fetched> {
        while self.pages < GROUP_COMMIT_PAGES && self.users.len() < GROUP_COMMIT_USERS {
            let event = rx.try_recv().ok()?;
            let Fetched::Page(flattening) = event else {
                return Some(event);
            };
            if !flattening.is_finished() {
                return Some(Fetched::Page(flattening));
            }
            match flattened(flattening).await {
                Ok(users) => self.users.extend(users),
                Err(e) => return Some(Fetched::Failed(e)),
            }
            self.pages += 1;
        }
        None
    }
}

/// One listing, or one per status (`[sync] status_listing`): together
/// they are the complete listing.
fn listings(params: ListUsersParams, per_status: bool) -> Vec<ListUsersParams> {
    if !per_status {
        return vec![params];
    }
    UserStatus::ALL
        .iter()
        .map(|status| ListUsersParams {
            status: Some(*status),
            ..params.clone()
        })
        .collect()
}

/// The producer: fetches the listings one after the other and hands each
/// page over as a flattening on the blocking pool, ending at the first error.
fn spawn_producer(
    client: CliqClient,
    clock: Clock,
    listings: Vec<ListUsersParams>,
    tx: tokio::sync::mpsc::Sender<Fetched>,
) -> AbortOnDrop {
    AbortOnDrop(Some(tokio::spawn(async move {
        let mut first = true;
        for params in listings {
            let mut stream = client.list_users_raw(params);
            while let Some(event) = stream.next().await {
                if let (true, Ok(ListEvent::Page(page))) = (first, &event) {
                    // The earliest answer bounds what the whole run saw.
                    first = false;
                    let answer = Fetched::FirstAnswer(page.server_date, clock.now());
                    if tx.send(answer).await.is_err() {
                        return;
                    }
                }
                let fetched = match event {
                    Ok(ListEvent::Page(page)) => {
                        Ok(Fetched::Page(tokio::task::spawn_blocking(move || {
                            flatten(&page.users)
                        })))
                    }
                    Ok(ListEvent::Restarted) => Ok(Fetched::Restarted),
                    Err(e) => Err(e),
                };
                let failed = fetched.is_err();
                if tx
                    .send(fetched.unwrap_or_else(Fetched::Failed))
                    .await
                    .is_err()
                    || failed
                {
                    return;
                }
            }
        }
    })))
}

/// Write a batch of flattened pages in one transaction, count them and
/// queue their new or changed users for team memberships.
async fn write_batch(
    parts: &PullParts<'_>,
    queue_teams: bool,
    batch: &Batch,
    (run_id, source, tracker): (i64, ChangeSource, &Tracker),
    report: &mut PullReport,
) -> Result<(), ListFailure> {
    let store = parts.store;
    let received = tokio::time::Instant::now();
    let now = store.clock().now();
    let out = store
        .write_users_page(&batch.users, run_id, source, now)
        .await
        .map_err(ListFailure::Store)?;
    tracing::debug!(
        page = report.pages + batch.pages,
        pages = batch.pages,
        users = out.seen,
        changed = out.added + out.changed,
        write_ms = received.elapsed().as_millis() as u64,
        "pages written"
    );
    report.pages += batch.pages;
    report.users_seen += out.seen;
    report.added += out.added;
    report.changed += out.changed;
    tracker.set(report.pages, report.users_seen);
    if queue_teams {
        store
            .queue_teams(&out.touched_ids, now)
            .await
            .map_err(ListFailure::Store)?;
    }
    Ok(())
}
