//! Attempts of unknown outcome: re-checked in Cliq, never re-sent blind.

use std::collections::{BTreeMap, HashSet};

use futures::StreamExt;
use serde_json::Value;

use super::run::{per_person, Halt, Run};
use crate::cliq::client::ListEvent;
use crate::cliq::error::CliqError;
use crate::cliq::models::{Fields, ListUsersParams, UserStatus};
use crate::hr::Attr;
use crate::mirror::pushes::PushStatus;
use crate::mirror::users::{ChangeSource, FlatUser};
use crate::mirror::StoreError;

pub(super) fn attr_of_cliq_key(key: &str) -> Option<Attr> {
    Attr::ALL.into_iter().find(|a| a.cliq_key() == key)
}

impl Run<'_> {
    /// Re-check the attempts whose outcome was never recorded. Returns how
    /// many were resolved.
    pub(super) async fn reconcile(&mut self) -> Result<Result<usize, Halt>, StoreError> {
        let dangling = self.store.dangling_pushes().await?;
        let mut done = 0;
        for d in dangling {
            if self.cancel.is_cancelled() {
                return Ok(Err(Halt::Stopped));
            }
            let (Some(user_id), "update") = (d.user_id.as_deref(), d.action.as_str()) else {
                // An add: re-planned and re-sent; "already in the org" then
                // counts as applied.
                self.skip_attempt(d.id, "unknown_outcome").await?;
                done += 1;
                continue;
            };
            let wanted: BTreeMap<String, String> = serde_json::from_str::<Value>(&d.fields_json)
                .ok()
                .and_then(|v| serde_json::from_value(v.get("fields")?.clone()).ok())
                .unwrap_or_default();
            let (status, code) = match self.recheck_update(user_id, &d.email, &wanted).await? {
                Recheck::Applied => {
                    self.report.reconciled += 1;
                    (PushStatus::Applied, "reconciled")
                }
                Recheck::NotApplied => (PushStatus::Skipped, "not_applied"),
                Recheck::Unknown => (PushStatus::Skipped, "reconcile_failed"),
                Recheck::Halt(h) => return Ok(Err(h)),
            };
            self.store
                .set_push_status(d.id, status, Some(code), self.now())
                .await?;
            done += 1;
        }
        Ok(Ok(done))
    }

    /// `GET /users/{id}`: does Cliq have the `wanted` values (Cliq key →
    /// value)? The mirror row is refreshed from the answer either way.
    pub(super) async fn recheck_update(
        &mut self,
        user_id: &str,
        email: &str,
        wanted: &BTreeMap<String, String>,
    ) -> Result<Recheck, StoreError> {
        let got = tokio::select! {
            biased;
            _ = self.cancel.cancelled() => return Ok(Recheck::Halt(Halt::Stopped)),
            r = self.client.get_user(user_id, Some(&Fields::All)) => r,
        };
        let user = match got {
            Ok(user) => user,
            Err(e) if per_person(&e) => return Ok(Recheck::Unknown),
            Err(e) => {
                return Ok(Recheck::Halt(Halt::Failed(format!(
                    "cannot re-check a write of unknown outcome for {email}: {e}"
                ))))
            }
        };
        let Some(flat) = FlatUser::from_map(&user.raw) else {
            return Ok(Recheck::Unknown);
        };
        let applied = wanted.iter().all(|(k, v)| {
            attr_of_cliq_key(k).is_some_and(|a| flat.get(a.mirror_column()) == Some(v.as_str()))
        });
        self.store
            .write_users_page(&[flat], self.run_id, ChangeSource::Push, self.now())
            .await?;
        Ok(if applied {
            Recheck::Applied
        } else {
            Recheck::NotApplied
        })
    }

    /// Which of `emails` Cliq has as pending invitations (what an add
    /// creates): one complete `GET /users?status=pending` listing. A
    /// listing that does not complete proves nothing and stops the run.
    pub(super) async fn lookup_added(
        &mut self,
        emails: &[&str],
    ) -> Result<Result<HashSet<String>, Halt>, CliqError> {
        let wanted: HashSet<String> = emails.iter().map(|e| e.to_lowercase()).collect();
        let params = ListUsersParams {
            status: Some(UserStatus::Pending),
            ..Default::default()
        };
        let mut pages = self.client.list_users(params);
        let mut found = HashSet::new();
        loop {
            let next = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return Ok(Err(Halt::Stopped)),
                n = pages.next() => n,
            };
            match next {
                None => return Ok(Ok(found)),
                Some(Ok(ListEvent::Restarted)) => found.clear(),
                Some(Ok(ListEvent::Page(page))) => found.extend(
                    page.users
                        .iter()
                        .filter_map(|u| u.email_id.as_deref().map(str::to_lowercase))
                        .filter(|e| wanted.contains(e)),
                ),
                Some(Err(e)) => return Err(e),
            }
        }
    }
}

/// What a re-check of an update of unknown outcome found.
pub(super) enum Recheck {
    /// Cliq has the values.
    Applied,
    /// Cliq does not have them: the update may be sent (once more).
    NotApplied,
    /// The user could not be fetched or read: nothing can be said.
    Unknown,
    Halt(Halt),
}
