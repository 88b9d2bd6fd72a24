//! Team memberships: fetched from the queue only while the endpoint has
//! headroom, never making a run wait for quota.

use tokio_util::sync::CancellationToken;

use super::PullParts;
use crate::cliq::error::CliqError;
use crate::cliq::models::Team;
use crate::cliq::Endpoint;
use crate::mirror::teams::TeamRow;
use crate::mirror::StoreError;

pub(super) enum TeamsFailure {
    Stopped,
    Cliq(CliqError),
    Store(StoreError),
}

/// Fetch queued team memberships: at most `limit` this run, and only while
/// the endpoint has headroom in its current window. Teams never make a run
/// wait for quota: what is left stays queued for the next runs.
pub(super) async fn fetch_teams(
    parts: &PullParts<'_>,
    limit: usize,
    cancel: &CancellationToken,
) -> Result<u64, TeamsFailure> {
    let (store, client) = (parts.store, parts.client);
    let quota = parts.scheduler.limits().get(Endpoint::UserTeams).requests;
    let ids = store
        .next_team_fetches(limit as i64)
        .await
        .map_err(TeamsFailure::Store)?;
    let mut fetched = 0;
    for id in ids {
        if !has_headroom(parts, quota).await? {
            break;
        }
        let teams = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(TeamsFailure::Stopped),
            r = client.user_teams(&id) => r,
        };
        let teams = match teams {
            Ok(t) => t,
            Err(CliqError::Permanent { status: 404, .. }) => {
                store
                    .dequeue_teams(&id)
                    .await
                    .map_err(TeamsFailure::Store)?;
                continue;
            }
            Err(e) => return Err(TeamsFailure::Cliq(e)),
        };
        let rows = team_rows(&teams);
        store
            .write_user_teams(&id, &rows, store.clock().now())
            .await
            .map_err(TeamsFailure::Store)?;
        fetched += 1;
    }
    Ok(fetched)
}

/// Whether the teams endpoint has headroom in its current window: used
/// below its quota and not locked.
async fn has_headroom(parts: &PullParts<'_>, quota: u32) -> Result<bool, TeamsFailure> {
    let used = parts
        .scheduler
        .used(Endpoint::UserTeams)
        .await
        .map_err(|e| TeamsFailure::Store(e.into()))?;
    let locked = parts
        .scheduler
        .locked_until(Endpoint::UserTeams)
        .await
        .map_err(|e| TeamsFailure::Store(e.into()))?;
    Ok(used < quota && locked.is_none())
}

/// The mirror's rows for a user's teams (a team without an id is skipped).
fn team_rows(teams: &[Team]) -> Vec<TeamRow> {
    teams
        .iter()
        .filter_map(|t| {
            Some(TeamRow {
                team_id: t.team_id.clone()?,
                name: t.name.clone(),
                organization_id: t.organization_id.clone(),
                description: t.description.clone(),
                is_active: t.is_active,
                participant_count: t.participant_count,
                creation_time: t.creation_time.clone(),
                is_moderator: t.is_moderator,
                joined: t.joined,
                raw_json: serde_json::to_string(&t.raw).unwrap_or_default(),
            })
        })
        .collect()
}
