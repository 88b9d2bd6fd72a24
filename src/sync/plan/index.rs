//! Index: the first pass over the mirror. It keeps only what resolving HR's
//! references needs: department and designation names ↔ ids (few), and the
//! users HR names as managers (by email or by id). Everyone else streams
//! past.

use std::collections::{HashMap, HashSet};

use crate::hr::{Attr, HrSource, ValueKind};
use crate::mirror::pushes::MirrorUser;
use crate::mirror::Column;

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
    fn add(&mut self, id: Option<&str>, name: Option<&str>) {
        let (Some(id), Some(name)) = (id, name) else {
            return;
        };
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
pub(super) struct Index<'h> {
    pub departments: Names,
    pub designations: Names,
    /// Live users whose email HR gives as `reporting_to_email`.
    pub by_email: HashMap<String, Vec<Referenced>>,
    /// Live users whose id HR gives as `reporting_to_zuid`.
    pub by_id: HashMap<String, Referenced>,
    /// Live users in the mirror.
    pub live: usize,
    wanted_emails: HashSet<&'h str>,
    wanted_ids: HashSet<&'h str>,
}

impl<'h> Index<'h> {
    pub fn new(hr: &'h HrSource) -> Self {
        let mut wanted_emails = HashSet::new();
        let mut wanted_ids = HashSet::new();
        for rec in &hr.records {
            if let Some(v) = rec.get(Attr::ReportingTo) {
                match v.kind {
                    ValueKind::Email => wanted_emails.insert(v.text.as_ref()),
                    _ => wanted_ids.insert(v.text.as_ref()),
                };
            }
        }
        Index {
            departments: Names::default(),
            designations: Names::default(),
            by_email: HashMap::new(),
            by_id: HashMap::new(),
            live: 0,
            wanted_emails,
            wanted_ids,
        }
    }

    /// Take in one mirror user (removed users do not count as in Cliq).
    pub fn add(&mut self, u: &MirrorUser) {
        if u.removed {
            return;
        }
        self.live += 1;
        let v = |c: Column| u.get(c);
        self.departments
            .add(v(Column::DepartmentId), v(Column::DepartmentName));
        self.designations
            .add(v(Column::DesignationId), v(Column::DesignationName));
        let referenced = || Referenced {
            id: u.id.clone(),
            display: display(u),
        };
        if let Some(e) = u.email.as_deref() {
            if self.wanted_emails.contains(e) {
                self.by_email
                    .entry(e.to_owned())
                    .or_default()
                    .push(referenced());
            }
        }
        if self.wanted_ids.contains(u.id.as_str()) {
            self.by_id.entry(u.id.clone()).or_insert_with(referenced);
        }
    }
}
