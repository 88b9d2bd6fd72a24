//! Where a record is, one problem in the source, and the collector of all of them.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::mirror::hr_stage::StagedRecord;
use crate::text::escape;

/// Where a record is in its file (ordered as in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Location {
    /// The whole file (unreadable, wrong top-level shape).
    File,
    /// A CSV line (1-based; the header is line 1).
    Line(u64),
    /// A record of a JSON/YAML/TOML list (1-based).
    Record(u64),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File => Ok(()),
            Location::Line(n) => write!(f, "line {n}"),
            Location::Record(n) => write!(f, "record {n}"),
        }
    }
}
/// One problem in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HrError {
    pub file: PathBuf,
    pub location: Location,
    /// The column / key concerned, if any.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for HrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.location != Location::File {
            write!(f, ": {}", self.location)?;
        }
        // Messages quote values from the file: never let them drive the terminal.
        if let Some(field) = &self.field {
            write!(f, ": field `{}`", escape(field))?;
        }
        write!(f, ": {}", escape(&self.message))
    }
}

/// At most this many errors are kept (the rest are counted).
pub const MAX_ERRORS: usize = 200;

/// Every problem found in a source (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct HrErrors {
    pub errors: Vec<HrError>,
    /// Errors beyond [`MAX_ERRORS`], not kept.
    pub more: usize,
}

impl HrErrors {
    pub fn total(&self) -> usize {
        self.errors.len() + self.more
    }
}

impl fmt::Display for HrErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self
            .errors
            .first()
            .map(|e| e.file.display().to_string())
            .unwrap_or_default();
        write!(
            f,
            "the HR source {file} is invalid ({} error{}); nothing was planned or pushed:",
            self.total(),
            if self.total() == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        if self.more > 0 {
            write!(f, "\n  … and {} more", self.more)?;
        }
        Ok(())
    }
}

/// The problems found so far, and where the records go: a batch at a time
/// to the stage (see [`super::staging`]), so a large source is never held
/// whole. Duplicate emails are found by the stage, once every record is in.
pub(super) struct Collector {
    file: PathBuf,
    pub(super) errors: Vec<HrError>,
    pub(super) more: usize,
    batch: Vec<StagedRecord>,
    sink: Option<tokio::sync::mpsc::Sender<Vec<StagedRecord>>>,
}

/// Records sent to the stage at a time.
const BATCH: usize = 2000;

impl Collector {
    pub(super) fn new(path: &Path) -> Self {
        Collector {
            file: path.to_owned(),
            errors: Vec::new(),
            more: 0,
            batch: Vec::new(),
            sink: None,
        }
    }

    /// A collector whose records go to `sink` (from a blocking thread).
    pub(super) fn with_sink(
        path: &Path,
        sink: tokio::sync::mpsc::Sender<Vec<StagedRecord>>,
    ) -> Self {
        Collector {
            sink: Some(sink),
            ..Collector::new(path)
        }
    }

    /// Take in one record whose email is acceptable (its values may not
    /// be: their problems are in `errors`, and any makes the source invalid).
    pub(super) fn emit(&mut self, record: StagedRecord) {
        self.batch.push(record);
        if self.batch.len() >= BATCH {
            self.flush();
        }
    }

    /// Send the last batch and let go of the sink, so the stage sees the end.
    pub(super) fn finish(&mut self) {
        self.flush();
        self.sink = None;
    }

    /// Send what is batched. A closed stage (the loader gave up) drops it.
    fn flush(&mut self) {
        let batch = std::mem::take(&mut self.batch);
        if let (Some(sink), false) = (&self.sink, batch.is_empty()) {
            let _ = sink.blocking_send(batch);
        }
    }

    pub(super) fn push(
        &mut self,
        location: Location,
        field: Option<&str>,
        message: impl Into<String>,
    ) {
        if self.errors.len() >= MAX_ERRORS {
            self.more += 1;
            return;
        }
        self.errors.push(HrError {
            file: self.file.clone(),
            location,
            field: field.map(str::to_owned),
            message: message.into(),
        });
    }

    pub(super) fn into_errors(self) -> HrErrors {
        HrErrors {
            errors: self.errors,
            more: self.more,
        }
    }
}
