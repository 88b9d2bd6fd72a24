//! The flattened user columns of the mirror (`users` view), one type shared
//! by flattening, the plan, the push and the HR attributes.

use std::fmt;
use std::ops::{Index, IndexMut};

/// One flattened column of `users` (without id, raw_json, hash and
/// timestamps), in schema order. `as_str` is its SQL name, the one table of
/// names; a test pins each against the `users` view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Column {
    EmailId,
    FirstName,
    LastName,
    DisplayName,
    FullName,
    Status,
    EmployeeId,
    Mobile,
    Phone,
    Extension,
    WorkLocation,
    Timezone,
    Language,
    Country,
    DepartmentId,
    DepartmentName,
    DesignationId,
    DesignationName,
    ReportingToId,
    ReportingToName,
}

impl Column {
    pub const COUNT: usize = 20;

    /// Every column, in schema order (the order of [`Values`]).
    pub const ALL: [Column; Column::COUNT] = [
        Column::EmailId,
        Column::FirstName,
        Column::LastName,
        Column::DisplayName,
        Column::FullName,
        Column::Status,
        Column::EmployeeId,
        Column::Mobile,
        Column::Phone,
        Column::Extension,
        Column::WorkLocation,
        Column::Timezone,
        Column::Language,
        Column::Country,
        Column::DepartmentId,
        Column::DepartmentName,
        Column::DesignationId,
        Column::DesignationName,
        Column::ReportingToId,
        Column::ReportingToName,
    ];

    /// The columns a plan reads besides `id`, `email_id`, `status` and
    /// `removed` (which a plan user carries as fields of their own).
    pub const PLAN: [Column; 17] = [
        Column::FirstName,
        Column::LastName,
        Column::DisplayName,
        Column::Phone,
        Column::Mobile,
        Column::Timezone,
        Column::Language,
        Column::Country,
        Column::EmployeeId,
        Column::Extension,
        Column::WorkLocation,
        Column::DepartmentId,
        Column::DepartmentName,
        Column::DesignationId,
        Column::DesignationName,
        Column::ReportingToId,
        Column::ReportingToName,
    ];

    /// The SQL name of the column.
    pub fn as_str(self) -> &'static str {
        match self {
            Column::EmailId => "email_id",
            Column::FirstName => "first_name",
            Column::LastName => "last_name",
            Column::DisplayName => "display_name",
            Column::FullName => "full_name",
            Column::Status => "status",
            Column::EmployeeId => "employee_id",
            Column::Mobile => "mobile",
            Column::Phone => "phone",
            Column::Extension => "extension",
            Column::WorkLocation => "work_location",
            Column::Timezone => "timezone",
            Column::Language => "language",
            Column::Country => "country",
            Column::DepartmentId => "department_id",
            Column::DepartmentName => "department_name",
            Column::DesignationId => "designation_id",
            Column::DesignationName => "designation_name",
            Column::ReportingToId => "reporting_to_id",
            Column::ReportingToName => "reporting_to_name",
        }
    }

    /// `a, b, c` for a `SELECT` of `columns`.
    pub(crate) fn sql_list(columns: &[Column]) -> String {
        let names: Vec<&str> = columns.iter().map(|c| c.as_str()).collect();
        names.join(", ")
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One value per [`Column`] (text; `None` for NULL or not read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Values([Option<String>; Column::COUNT]);

impl Values {
    pub fn get(&self, c: Column) -> Option<&str> {
        self[c].as_deref()
    }
}

impl<'a> IntoIterator for &'a Values {
    type Item = &'a Option<String>;
    type IntoIter = std::slice::Iter<'a, Option<String>>;
    /// In [`Column::ALL`] order.
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl From<[Option<String>; Column::COUNT]> for Values {
    fn from(v: [Option<String>; Column::COUNT]) -> Self {
        Values(v)
    }
}

impl Index<Column> for Values {
    type Output = Option<String>;
    fn index(&self, c: Column) -> &Option<String> {
        // The discriminant is the position: `ALL` lists the variants in
        // declaration order (pinned by a test).
        &self.0[c as usize]
    }
}

impl IndexMut<Column> for Values {
    fn index_mut(&mut self, c: Column) -> &mut Option<String> {
        &mut self.0[c as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::mirror::Store;

    #[test]
    fn all_lists_every_column_at_its_position() {
        for (i, c) in Column::ALL.into_iter().enumerate() {
            assert_eq!(c as usize, i, "{c}");
        }
    }

    /// Every column's name is a column of the `users` view, in the view's
    /// order after `id`.
    #[tokio::test]
    async fn every_column_is_a_column_of_the_users_view() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.db"), &Clock::system())
            .await
            .unwrap();
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info('users')")
            .fetch_all(store.pool())
            .await
            .unwrap();
        let ours: Vec<&str> = Column::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(&names[1..=Column::COUNT], &ours[..], "{names:?}");
    }
}
