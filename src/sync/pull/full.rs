//! What only a full pull does: the removal circuit breaker before anyone
//! is marked removed, and the layouts refresh.

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::{PullOptions, PullParts, PullReport, TeamsMode, LAYOUT_NAMES};
use crate::cliq::client::CliqClient;
use crate::cliq::error::CliqError;
use crate::mirror::{Store, StoreError};

/// The removal circuit breaker, after a full listing that looked
/// complete: `Some(why)` when marking the unseen users removed would cross
/// `max_removals` or `max_removal_fraction` of the present users (a listing
/// that ended early looks exactly like a mass removal), unless
/// `allow_removals` lifts it for this run.
pub(super) async fn removal_breaker(
    store: &Store,
    opts: &PullOptions,
    started_at: DateTime<Utc>,
    seen: u64,
) -> Result<Option<String>, StoreError> {
    let (unseen, present) = store.unseen_since(started_at).await?;
    let share = if present == 0 {
        0.0
    } else {
        unseen as f64 / present as f64
    };
    let over_count = unseen > opts.max_removals;
    let over_share = share > opts.max_removal_fraction;
    if !(over_count || over_share) {
        return Ok(None);
    }
    tracing::warn!(
        seen,
        present,
        would_remove = unseen,
        "suspicious full listing: it is short against the mirror"
    );
    if opts.allow_removals {
        tracing::warn!(
            removed = unseen,
            "--allow-removals: marking them removed as confirmed"
        );
        return Ok(None);
    }
    let limit = if over_count {
        format!("more than [sync] max_removals = {}", opts.max_removals)
    } else {
        format!(
            "more than [sync] max_removal_fraction = {} of the {present} present",
            opts.max_removal_fraction
        )
    };
    let why = format!(
        "held: the full listing saw {seen} users and would mark {unseen} of {present} \
         removed ({:.1}%), {limit}; nobody was marked removed. A listing that ended early \
         looks like this: check the org in Cliq, then confirm with \
         `cliq-sync sync --full --allow-removals`",
        share * 100.0
    );
    tracing::error!(reason = %why, "full pull held by the removal circuit breaker");
    Ok(Some(why))
}

async fn refresh_layouts(
    store: &Store,
    client: &CliqClient,
    cancel: &CancellationToken,
) -> Result<(), CliqError> {
    for name in LAYOUT_NAMES {
        if cancel.is_cancelled() {
            return Ok(());
        }
        // A call may wait out a lock: a stop must not wait with it.
        let layouts = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Ok(()),
            r = client.user_layouts(name) => r?,
        };
        let raw: Vec<_> = layouts
            .iter()
            .map(|l| serde_json::Value::Object(l.raw.clone()))
            .collect();
        let text = serde_json::to_string(&raw).unwrap_or_default();
        if let Err(e) = store.write_layout(name, &text, store.clock().now()).await {
            tracing::warn!(error = %e, layout = name, "layout not stored");
        }
    }
    Ok(())
}

/// A complete full listing that passed the breaker: the unseen users are
/// marked removed, every user is queued for teams (`[sync] teams = "all"`)
/// and the layouts are refreshed.
pub(super) async fn complete_full(
    parts: &PullParts<'_>,
    opts: &PullOptions,
    report: &mut PullReport,
    now: DateTime<Utc>,
    cancel: &CancellationToken,
) -> Result<(), StoreError> {
    let (store, client) = (parts.store, parts.client);
    report.removed = store
        .mark_unseen_removed(report.started_at, report.run_id, now)
        .await?;
    if opts.teams == TeamsMode::All {
        store.queue_all_teams(now).await?;
    }
    if opts.layouts {
        if let Err(e) = refresh_layouts(store, client, cancel).await {
            tracing::warn!(error = %e, "layouts were not refreshed");
        }
    }
    Ok(())
}
