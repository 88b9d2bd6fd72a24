//! The listing pipeline: a producer task fetches pages, the blocking pool
//! reads them (see `page`), and the pull writes them in turn into the
//! mirror: one page per transaction while pages arrive slower than they are written,
//! the pages already waiting in the same transaction when the writer fell
//! behind (group commit). The producer's quota-ledger writes go to a file
//! of their own, so it is never held up by the writer's transaction.

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::page::{self, ReadMode, ReadPage};
use super::watermark::note_first_answer;
use super::{PullOptions, PullParts, PullReport, TeamsMode};
use crate::cliq::client::{CliqClient, ListEvent};
use crate::cliq::error::CliqError;
use crate::cliq::models::{ListUsersParams, UserStatus};
use crate::cliq::Endpoint;
use crate::clock::Clock;
use crate::mirror::users::{ChangeSource, PageGroup, PageOutcome};
use crate::mirror::StoreError;
use crate::sync::progress::Tracker;

pub(super) enum Listing {
    Complete,
    Stopped,
}

/// What the listing producer hands over.
pub(super) enum Fetched {
    /// A page being read (in order: the consumer awaits each in turn).
    Page(tokio::task::JoinHandle<Result<ReadPage, CliqError>>),
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

/// Pages the producer may fetch ahead of the writer (the channel's
/// bound): a flattened page of 100 users is a few hundred KB, so memory
/// stays bounded; the group below needs no more, because it writes each
/// page into its transaction as it takes it instead of collecting them.
const PAGES_AHEAD: usize = 2;

/// Group commit: the writer keeps writing pages that are already fetched
/// into one transaction, up to this many, and commits as soon as none is
/// waiting (it never holds the write lock while the network is slow).
/// Every commit rewrites the index pages it touched into the WAL (for
/// `users_email`, about one per user of the page), so a writer that
/// fell behind catches up with fewer, larger commits. The cap keeps the
/// mirror's write lock (which other processes wait for) short, and a
/// reader's view of the pull's progress fresh.
const GROUP_COMMIT_PAGES: u64 = 20;

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
    // k+1 is read (parsed and hashed, on the blocking pool) and page k
    // is written. The channel holds a few pages, so memory stays bounded.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Fetched>(PAGES_AHEAD);
    let listings = listings(params, opts.per_status);
    let mode = ReadMode::new();
    let producer = spawn_producer(
        client.clone(),
        store.clock().clone(),
        (listings, mode.clone()),
        tx,
    );
    // What ended a group of ready pages, handled next.
    let mut held: Option<Fetched> = None;
    loop {
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
            Some(Fetched::Page(reading)) => {
                let page = read_page(reading).await.map_err(ListFailure::Cliq)?;
                let group = (page, &mode, &mut rx);
                held = write_group(parts, queue_teams, group, run, report, cancel).await?;
            }
        }
    }
}

/// A page read on the blocking pool, or why it has no users.
async fn read_page<T>(
    reading: tokio::task::JoinHandle<Result<T, CliqError>>,
) -> Result<T, CliqError> {
    reading.await.unwrap_or_else(|e| {
        Err(CliqError::Decode {
            endpoint: Endpoint::ListUsers,
            message: format!("reading a listed page failed: {e}"),
        })
    })
}

/// Write one read page into the group: by its keys if they show it
/// unchanged, else in full (read now, if it was read by its keys), and
/// tell `mode` which it was, for the pages still to be read.
async fn write_page(
    group: &mut PageGroup,
    page: ReadPage,
    now: DateTime<Utc>,
    mode: &ReadMode,
) -> Result<PageOutcome, ListFailure> {
    let out = match page {
        ReadPage::Full(users) => group.write(&users, now).await,
        ReadPage::Keys { keys, raw } => match group.write_unchanged(&keys, now).await {
            Ok(Some(out)) => Ok(out),
            Ok(None) => {
                let reading = tokio::task::spawn_blocking(move || page::flatten(&raw));
                let users = read_page(reading).await.map_err(ListFailure::Cliq)?;
                group.write_changed(&users, now).await
            }
            Err(e) => Err(e),
        },
    }
    .map_err(ListFailure::Store)?;
    mode.note(out.added == 0 && out.changed == 0);
    Ok(out)
}

/// Write `first` and the pages already waiting behind it in one
/// transaction (group commit, see [`GROUP_COMMIT_PAGES`]), and commit.
/// The first event that is not a waiting page (an empty channel, a
/// restart, a failure, the end) ends the group: what is not a page is
/// returned, to be handled next, so the pages before a failure are
/// written as they would be one by one. A page that cannot be read ends
/// the group the same way, as the failure that then fails the listing.
async fn write_group(
    parts: &PullParts<'_>,
    queue_teams: bool,
    (first, mode, rx): (
        ReadPage,
        &ReadMode,
        &mut tokio::sync::mpsc::Receiver<Fetched>,
    ),
    (run_id, source, tracker): (i64, ChangeSource, &Tracker),
    report: &mut PullReport,
    cancel: &CancellationToken,
) -> Result<Option<Fetched>, ListFailure> {
    let store = parts.store;
    let started = tokio::time::Instant::now();
    let mut group = store
        .begin_pages(run_id, source, queue_teams)
        .await
        .map_err(ListFailure::Store)?;
    let (mut pages, mut page, mut next) = (0u64, first, None);
    loop {
        let out = match write_page(&mut group, page, store.clock().now(), mode).await {
            Ok(out) => out,
            // A page read by its keys that then cannot be read in full
            // ends the group like any unreadable page: the pages before it
            // are committed (with the sightings its keys had recorded:
            // those users were seen), and the failure fails the listing.
            Err(ListFailure::Cliq(e)) => {
                next = Some(Fetched::Failed(e));
                break;
            }
            Err(e) => return Err(e),
        };
        pages += 1;
        report.pages += 1;
        report.users_seen += out.seen;
        report.added += out.added;
        report.changed += out.changed;
        if pages >= GROUP_COMMIT_PAGES || cancel.is_cancelled() {
            break;
        }
        match waiting(rx).await {
            Ok(read) => page = read,
            Err(end) => {
                next = end;
                break;
            }
        }
    }
    group.commit().await.map_err(ListFailure::Store)?;
    tracker.set(report.pages, report.users_seen);
    tracing::debug!(
        page = report.pages,
        pages,
        write_ms = started.elapsed().as_millis() as u64,
        "pages written"
    );
    Ok(next)
}

/// The next page already waiting behind a group, read; else what ends
/// the group: nothing waiting (`None`), or the event waiting instead (a
/// page that cannot be read as its failure).
async fn waiting(
    rx: &mut tokio::sync::mpsc::Receiver<Fetched>,
) -> Result<ReadPage, Option<Fetched>> {
    match rx.try_recv() {
        Ok(Fetched::Page(reading)) => read_page(reading)
            .await
            .map_err(|e| Some(Fetched::Failed(e))),
        Ok(other) => Err(Some(other)),
        Err(_) => Err(None),
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
/// page over as a reading on the blocking pool (as `mode` says), ending
/// at the first error.
fn spawn_producer(
    client: CliqClient,
    clock: Clock,
    (listings, mode): (Vec<ListUsersParams>, ReadMode),
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
                        let by_keys = mode.by_keys();
                        Ok(Fetched::Page(tokio::task::spawn_blocking(move || {
                            page::read(page.users, by_keys)
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
