//! Index: what resolving HR's references needs from the mirror, asked of
//! SQL: department and designation names ↔ ids (few), and the users HR
//! names as managers (by email or by id). No one else is read.

use std::collections::HashMap;

use crate::hr::{Attr, ValueKind};
use crate::mirror::plan_join::PlanRead;
use crate::mirror::pushes::MirrorUser;
use crate::mirror::{Column, StoreError};

/// A user's name as a plan shows it: `display_name`, else first + last.
pub(super) fn display(u: &MirrorUser) -> Option<String> {
    let first = u.get(Column::FirstName).unwrap_or("");
    let last = u.get(Column::LastName).unwrap_or("");
    let full = format!("{first} {last}").trim().to_string();
    u.get(Column::DisplayName)
        .map(str::to_owned)
        .or((!full.is_empty()).then_some(full))
}

/// Name → ids and id → name of departments / designations seen in the mirror.
#[derive(Default)]
pub(super) struct Names {
    pub by_name: HashMap<String, Vec<String>>,
    pub by_id: HashMap<String, String>,
}

impl Names {
    fn add(&mut self, id: &str, name: &str) {
        if !self.by_id.contains_key(id) {
            self.by_id.insert(id.to_owned(), name.to_owned());
        }
        let ids = self.by_name.entry(name.trim().to_lowercase()).or_default();
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_owned());
        }
    }
}

/// A user HR refers to as a manager.
#[derive(Debug, Clone)]
pub(super) struct Referenced {
    pub id: String,
    pub display: Option<String>,
}

/// What resolving needs from the mirror.
#[derive(Default)]
pub(super) struct Index {
    pub departments: Names,
    pub designations: Names,
    /// Live users whose email HR gives as `reporting_to_email`.
    pub by_email: HashMap<String, Vec<Referenced>>,
    /// Live users whose id HR gives as `reporting_to_zuid`.
    pub by_id: HashMap<String, Referenced>,
    /// Live users in the mirror.
    pub live: usize,
}

impl Index {
    /// Read the index from the mirror, for the HR source attached to `read`.
    pub async fn read(read: &mut PlanRead<'_>) -> Result<Self, StoreError> {
        let mut index = Index::default();
        for (dept_id, dept, desig_id, desig, users) in read.reference_names().await? {
            index.live += users as usize;
            if let (Some(id), Some(name)) = (dept_id, dept) {
                index.departments.add(&id, &name);
            }
            if let (Some(id), Some(name)) = (desig_id, desig) {
                index.designations.add(&id, &name);
            }
        }
        let (slot, email) = (Attr::ReportingTo.index(), ValueKind::Email.code());
        for by_email in [true, false] {
            for u in read.referenced(slot, email, by_email).await? {
                index.add_referenced(&u, by_email, !by_email);
            }
        }
        Ok(index)
    }

    /// A live user HR names as a manager, by email and/or by id.
    pub fn add_referenced(&mut self, u: &MirrorUser, by_email: bool, by_id: bool) {
        let referenced = || Referenced {
            id: u.id.clone(),
            display: display(u),
        };
        if let (Some(e), true) = (u.email.as_deref(), by_email) {
            self.by_email
                .entry(e.to_owned())
                .or_default()
                .push(referenced());
        }
        if by_id {
            self.by_id.entry(u.id.clone()).or_insert_with(referenced);
        }
    }
}
