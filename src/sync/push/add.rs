//! One add batch (`POST /users`): sent, settled person by person.

use std::collections::HashSet;

use serde_json::json;

use super::run::{per_person, Halt, Run};
use super::ALREADY_THERE;
use crate::cliq::error::CliqError;
use crate::cliq::models::{BatchResult, UserFields};
use crate::mirror::pushes::{NewPush, PushStatus};
use crate::mirror::StoreError;
use crate::sync::plan::PlannedAdd;

impl Run<'_> {
    pub(super) async fn add(
        &mut self,
        batch: &[PlannedAdd],
    ) -> Result<Result<(), Halt>, StoreError> {
        if self.cancel.is_cancelled() {
            return Ok(Err(Halt::Stopped));
        }
        let (ids, jsons, bodies) = self.insert_planned_adds(batch).await?;
        let rows = AddRows {
            batch,
            ids: &ids,
            jsons: &jsons,
        };
        // Indices into the batch still to send.
        let mut left: Vec<usize> = (0..batch.len()).collect();
        let mut resent = false;
        loop {
            let send: Vec<UserFields> = left.iter().map(|&i| bodies[i].clone()).collect();
            let res = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return Ok(Err(Halt::Stopped)),
                r = self.client.add_users(&send) => r,
            };
            let Err(CliqError::OutcomeUnknown { reason, .. }) = res else {
                return self.settle_adds(&rows, &left, res).await;
            };
            tracing::warn!(%reason, people = left.len(), "add of unknown outcome; looking the emails up in Cliq");
            let emails: Vec<&str> = left.iter().map(|&i| batch[i].email.as_str()).collect();
            let found = match self.lookup_added(&emails).await {
                Ok(Ok(found)) => found,
                Ok(Err(halt)) => return Ok(Err(halt)),
                // The rows stay `planned`: the next run deals with them.
                Err(e) => {
                    return Ok(Err(Halt::Failed(format!(
                        "cannot look up an add of unknown outcome ({}): {e}",
                        emails.join(", ")
                    ))))
                }
            };
            let missing = self.settle_found_adds(&rows, left, &found).await?;
            if missing.is_empty() {
                return Ok(Ok(()));
            }
            if resent {
                for i in missing {
                    let msg = format!(
                        "the add's outcome was lost twice ({reason}); left for the next push"
                    );
                    self.fail_retryable(ids[i], &batch[i].email, "add", "not_applied", msg)
                        .await?;
                }
                return Ok(Ok(()));
            }
            resent = true;
            self.report.resent += missing.len() as u64;
            left = missing;
        }
    }

    /// The batch's `planned` rows, recorded before anything is sent: their
    /// ids, `fields_json` and request bodies, by index into the batch.
    async fn insert_planned_adds(
        &mut self,
        batch: &[PlannedAdd],
    ) -> Result<(Vec<i64>, Vec<String>, Vec<UserFields>), StoreError> {
        let mut ids = Vec::with_capacity(batch.len());
        let mut bodies = Vec::with_capacity(batch.len());
        let mut jsons = Vec::with_capacity(batch.len());
        for a in batch {
            let fields_json =
                json!({"fields": a.fields, "desired_hash": a.desired_hash}).to_string();
            let id = self
                .store
                .insert_push(
                    &NewPush {
                        run_id: self.run_id,
                        user_id: None,
                        email: &a.email,
                        action: "add",
                        fields_json: fields_json.clone(),
                        status: PushStatus::Planned,
                        error_code: None,
                    },
                    self.now(),
                )
                .await?;
            ids.push(id);
            jsons.push(fields_json);
            let mut f = UserFields::for_email(a.email.clone());
            for (k, v) in &a.fields {
                f.set(k, v.clone()).expect("plan keys are Cliq keys");
            }
            bodies.push(f);
        }
        Ok((ids, jsons, bodies))
    }

    /// The people at `left` of an add whose answer was lost, once looked up:
    /// those `found` in Cliq are `applied` (`reconciled`); the rest are
    /// returned, to be sent again.
    async fn settle_found_adds(
        &mut self,
        rows: &AddRows<'_>,
        left: Vec<usize>,
        found: &HashSet<String>,
    ) -> Result<Vec<usize>, StoreError> {
        let mut missing = Vec::new();
        for i in left {
            if found.contains(&rows.batch[i].email.to_lowercase()) {
                self.store
                    .set_push_status(
                        rows.ids[i],
                        PushStatus::Applied,
                        Some("reconciled"),
                        self.now(),
                    )
                    .await?;
                self.report.adds_applied += 1;
                self.report.reconciled += 1;
            } else {
                missing.push(i);
            }
        }
        Ok(missing)
    }

    /// The outcome of an add request (for the people at `left`) that got an answer.
    pub(super) async fn settle_adds(
        &mut self,
        rows: &AddRows<'_>,
        left: &[usize],
        res: Result<BatchResult, CliqError>,
    ) -> Result<Result<(), Halt>, StoreError> {
        match res {
            Ok(result) => {
                for &i in left {
                    self.settle_add(rows, i, &result).await?;
                }
            }
            Err(e) if per_person(&e) => {
                for &i in left {
                    let (a, id, fields_json) = (&rows.batch[i], rows.ids[i], &rows.jsons[i]);
                    let code = e.code().map(str::to_owned);
                    self.fail(
                        id,
                        &a.email,
                        None,
                        "add",
                        &a.desired_hash,
                        fields_json,
                        code,
                        e.to_string(),
                    )
                    .await?;
                }
            }
            Err(e) => {
                let stop: Vec<(i64, &str)> = left
                    .iter()
                    .map(|&i| (rows.ids[i], rows.batch[i].email.as_str()))
                    .collect();
                return Ok(Err(self.stop_on(&stop, "add", e).await?));
            }
        }
        Ok(Ok(()))
    }

    /// One person of an answered add request.
    pub(super) async fn settle_add(
        &mut self,
        rows: &AddRows<'_>,
        i: usize,
        result: &BatchResult,
    ) -> Result<(), StoreError> {
        let (a, id, fields_json) = (&rows.batch[i], rows.ids[i], &rows.jsons[i]);
        if result.is_success(&a.email) {
            self.store
                .set_push_status(id, PushStatus::Applied, None, self.now())
                .await?;
            self.report.adds_applied += 1;
            return Ok(());
        }
        // Not mentioned at all: outcome unknown, the row stays `planned`
        // and the next run deals with it.
        let Some(code) = result.failure_code(&a.email) else {
            return Ok(());
        };
        let code = code.to_owned();
        if ALREADY_THERE.contains(&code.as_str()) {
            // Already in the org (e.g. an earlier attempt got there first).
            self.store
                .set_push_status(id, PushStatus::Applied, Some(&code), self.now())
                .await?;
            self.report.adds_already_present += 1;
        } else {
            let message = format!("Cliq refused to add {}: {code}", a.email);
            let hash = &a.desired_hash;
            self.fail(
                id,
                &a.email,
                None,
                "add",
                hash,
                fields_json,
                Some(code),
                message,
            )
            .await?;
        }
        Ok(())
    }
}

/// The `pushes` rows of one add batch, by index into the batch.
pub(super) struct AddRows<'a> {
    pub(super) batch: &'a [PlannedAdd],
    pub(super) ids: &'a [i64],
    pub(super) jsons: &'a [String],
}
