//! The content of a held plan: what it would write (per person and field
//! the desired value, plus the adds), kept in `held_plans` with the SHA-256
//! of that text as its content hash, and the lookup of an approval by that
//! hash. Below both the push (which keeps a plan it holds and asks whether
//! a plan was approved) and `approve` (which lists, approves and shows the
//! difference), so neither needs the other.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::mirror::held_plans::NewHeldPlan;
use crate::mirror::{Store, StoreError};
use crate::sync::plan::Plan;

/// What a plan would write: email → field → value, for updates and adds.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Writes {
    pub(crate) updates: BTreeMap<String, BTreeMap<String, String>>,
    pub(crate) adds: BTreeMap<String, BTreeMap<String, String>>,
}

impl Writes {
    pub(crate) fn of(plan: &Plan) -> Self {
        let updates = plan.updates.iter().map(|u| {
            let fields = u
                .changes
                .iter()
                .map(|c| (c.field.to_owned(), c.desired.clone()));
            (u.email.clone(), fields.collect())
        });
        let adds = plan.adds.iter().map(|a| {
            let fields = a.fields.iter().map(|(k, v)| ((*k).to_owned(), v.clone()));
            (a.email.clone(), fields.collect())
        });
        Writes {
            updates: updates.collect(),
            adds: adds.collect(),
        }
    }

    /// The JSON text kept in `held_plans.plan_json` and its SHA-256.
    pub(crate) fn text_and_hash(&self) -> (String, String) {
        use sha2::{Digest, Sha256};
        let text = serde_json::to_string(self).unwrap_or_default();
        let hash = Sha256::digest(text.as_bytes());
        (text, hash.iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// Keep the plan of held run `run_id`; returns its ID.
pub(crate) async fn keep(
    store: &Store,
    run_id: i64,
    plan: &Plan,
    reason: &str,
) -> Result<String, StoreError> {
    let (text, hash) = Writes::of(plan).text_and_hash();
    let held = NewHeldPlan {
        run_id,
        plan_hash: &hash,
        plan_json: &text,
        reason,
        changes: plan.summary.changes as u64,
    };
    store.keep_held_plan(&held, store.clock().now()).await
}

/// The approved held plan this plan is exactly, if any.
pub(crate) async fn approval_for(store: &Store, plan: &Plan) -> Result<Option<String>, StoreError> {
    store
        .approved_plan(&Writes::of(plan).text_and_hash().1)
        .await
}
