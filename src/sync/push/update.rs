//! One update (`PUT /users/{id}`): sent, settled, and the mirror row
//! patched on success.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::reconcile::Recheck;
use super::run::{per_person, Halt, Run};
use crate::cliq::error::CliqError;
use crate::cliq::models::{BatchResult, UserFields};
use crate::hr::Attr;
use crate::mirror::pushes::{NewPush, PushStatus};
use crate::mirror::users::{ChangeSource, FlatUser};
use crate::mirror::StoreError;
use crate::sync::plan::PlannedUpdate;

impl Run<'_> {
    pub(super) async fn update(
        &mut self,
        u: &PlannedUpdate,
    ) -> Result<Result<(), Halt>, StoreError> {
        if self.cancel.is_cancelled() {
            return Ok(Err(Halt::Stopped));
        }
        let fields: BTreeMap<&str, &str> = u
            .changes
            .iter()
            .map(|c| (c.cliq_key, c.desired.as_str()))
            .collect();
        let (push_id, fields_json) = self.insert_planned_update(u, &fields).await?;
        let body = update_body(u);
        let wanted: BTreeMap<String, String> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut resent = false;
        loop {
            // Cancelled while waiting for the quota or in flight: the row
            // stays `planned` and the next run re-checks it.
            let res = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return Ok(Err(Halt::Stopped)),
                r = self.client.update_user(&u.user_id, &u.email, &body) => r,
            };
            let Err(CliqError::OutcomeUnknown { reason, .. }) = res else {
                return self.settle_update(u, push_id, &fields_json, res).await;
            };
            tracing::warn!(email = %u.email, %reason, "update of unknown outcome; re-checking it in Cliq");
            let code = match self.recheck_update(&u.user_id, &u.email, &wanted).await? {
                Recheck::Applied => {
                    self.report.updates_applied += 1;
                    self.report.reconciled += 1;
                    "reconciled"
                }
                Recheck::NotApplied if !resent => {
                    resent = true;
                    self.report.resent += 1;
                    continue;
                }
                Recheck::NotApplied => "not_applied",
                Recheck::Unknown => "reconcile_failed",
                Recheck::Halt(h) => return Ok(Err(h)),
            };
            self.close_unknown_update(push_id, u, code, &reason).await?;
            return Ok(Ok(()));
        }
    }

    /// The update's `planned` row, recorded before anything is sent: its id
    /// and `fields_json` (the values sent, the mirror's, the desired hash).
    async fn insert_planned_update(
        &mut self,
        u: &PlannedUpdate,
        fields: &BTreeMap<&str, &str>,
    ) -> Result<(i64, String), StoreError> {
        let current: BTreeMap<&str, Option<&str>> = u
            .changes
            .iter()
            .map(|c| (c.cliq_key, c.current.as_deref()))
            .collect();
        let fields_json =
            json!({"fields": fields, "current": current, "desired_hash": u.desired_hash})
                .to_string();
        let push_id = self
            .store
            .insert_push(
                &NewPush {
                    run_id: self.run_id,
                    user_id: Some(&u.user_id),
                    email: &u.email,
                    action: "update",
                    fields_json: fields_json.clone(),
                    status: PushStatus::Planned,
                    error_code: None,
                },
                self.now(),
            )
            .await?;
        Ok((push_id, fields_json))
    }

    /// An update whose answer was lost, once re-checked in Cliq: `applied`
    /// (`reconciled`) when Cliq has the values, else failed and retryable.
    async fn close_unknown_update(
        &mut self,
        push_id: i64,
        u: &PlannedUpdate,
        code: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        if code == "reconciled" {
            self.store
                .set_push_status(push_id, PushStatus::Applied, Some(code), self.now())
                .await?;
        } else {
            let msg =
                format!("the update's outcome was lost twice ({reason}); left for the next push");
            self.fail_retryable(push_id, &u.email, "update", code, msg)
                .await?;
        }
        Ok(())
    }

    /// The outcome of an update that got an answer.
    pub(super) async fn settle_update(
        &mut self,
        u: &PlannedUpdate,
        push_id: i64,
        fields_json: &str,
        res: Result<BatchResult, CliqError>,
    ) -> Result<Result<(), Halt>, StoreError> {
        match res {
            Ok(batch) => match batch.failure_code(&u.email) {
                None => {
                    self.apply_update(u).await?;
                    self.store
                        .set_push_status(push_id, PushStatus::Applied, None, self.now())
                        .await?;
                    self.report.updates_applied += 1;
                }
                Some(code) => {
                    let code = code.to_owned();
                    let msg = format!("Cliq refused the update: {code}");
                    self.fail_update(push_id, u, fields_json, Some(code), msg)
                        .await?;
                }
            },
            Err(e @ CliqError::TechnicalError { .. }) => {
                self.technical_error(u, push_id, fields_json, e).await?;
            }
            Err(e) if per_person(&e) => {
                let code = e.code().map(str::to_owned);
                self.fail_update(push_id, u, fields_json, code, e.to_string())
                    .await?;
            }
            Err(e) => {
                return Ok(Err(self
                    .stop_on(&[(push_id, u.email.as_str())], "update", e)
                    .await?))
            }
        }
        Ok(Ok(()))
    }

    /// A 500 "technical error" that persisted through the retries. Only when
    /// it names a reference the mirror does not know is it about the HR
    /// value (`reference_rejected`, remembered); otherwise it is Cliq's
    /// trouble: `failed` with `technical_error`, tried again next run.
    pub(super) async fn technical_error(
        &mut self,
        u: &PlannedUpdate,
        push_id: i64,
        fields_json: &str,
        e: CliqError,
    ) -> Result<(), StoreError> {
        let mut unknown = Vec::new();
        for (k, v) in e.sent_references() {
            if !self.store.reference_known(k, v).await? {
                unknown.push(format!("{k}={v}"));
            }
        }
        if unknown.is_empty() {
            let msg = format!("{e}; every reference sent is known to the mirror, so this is taken as Cliq's trouble and tried again at the next push");
            return self
                .fail_retryable(push_id, &u.email, "update", "technical_error", msg)
                .await;
        }
        let msg = format!(
            "Cliq rejected a reference the mirror does not know: {} ({e}); fix the HR value",
            unknown.join(", ")
        );
        let code = Some("reference_rejected".to_owned());
        self.fail_update(push_id, u, fields_json, code, msg).await
    }

    /// [`Run::fail`] for an update.
    pub(super) async fn fail_update(
        &mut self,
        push_id: i64,
        u: &PlannedUpdate,
        fields_json: &str,
        code: Option<String>,
        message: String,
    ) -> Result<(), StoreError> {
        let (email, id, hash) = (&u.email, Some(u.user_id.as_str()), &u.desired_hash);
        self.fail(
            push_id,
            email,
            id,
            "update",
            hash,
            fields_json,
            code,
            message,
        )
        .await
    }

    /// The mirror row after a successful update: the changed columns, the
    /// same values patched into `raw_json`, `user_changes` of source `push`.
    pub(super) async fn apply_update(&mut self, u: &PlannedUpdate) -> Result<(), StoreError> {
        let raw = self.store.user_raw_json(&u.user_id).await?;
        let mut obj: Map<String, Value> = raw
            .and_then(|r| serde_json::from_str(&r).ok())
            .unwrap_or_default();
        if !obj.contains_key("id") {
            obj.insert("id".into(), Value::String(u.user_id.clone()));
        }
        for c in &u.changes {
            let Some(attr) = Attr::from_name(c.field) else {
                continue;
            };
            let nested = match attr {
                Attr::Department => Some(("department", &["department_id"][..])),
                Attr::Designation => Some(("designation", &["designation_id"][..])),
                Attr::ReportingTo => {
                    Some(("reportingto", &["reporting_to", "reporting_to_zuid"][..]))
                }
                _ => None,
            };
            match nested {
                Some((key, flat_keys)) => {
                    let mut r = Map::new();
                    r.insert("id".into(), Value::String(c.desired.clone()));
                    if let Some(n) = &c.desired_name {
                        r.insert("name".into(), Value::String(n.clone()));
                    }
                    for k in flat_keys {
                        obj.remove(*k);
                    }
                    obj.insert(key.into(), Value::Object(r));
                }
                None => {
                    obj.insert(c.cliq_key.into(), Value::String(c.desired.clone()));
                }
            }
        }
        if let Some(flat) = FlatUser::from_map(&obj) {
            self.store
                .write_users_page(&[flat], self.run_id, ChangeSource::Push, self.now())
                .await?;
        }
        Ok(())
    }
}

/// The `PUT` body: only the changed fields, at their desired values.
fn update_body(u: &PlannedUpdate) -> UserFields {
    let mut body = UserFields::new();
    for c in &u.changes {
        body.set(c.cliq_key, c.desired.clone())
            .expect("plan keys are Cliq keys");
    }
    body
}
