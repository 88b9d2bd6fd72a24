//! The loaded source: validated records staged on disk
//! ([`crate::mirror::hr_stage`]), never held whole, so loading and planning
//! a source of a million people stays within a small, fixed memory.
//!
//! The file is parsed on a blocking thread (it is CPU work, and a tokio
//! worker must not stall on it); its records cross to the stage a batch at
//! a time over a bounded channel, so parsing waits for the stage rather
//! than piling records up.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{Collector, HrErrors, Location};
use super::record::{HrRecord, HrValue};
use super::{Format, Mapping, ValueKind};
use crate::mirror::hr_stage::{HrStage, StagedRecord, SLOTS};
use crate::mirror::StoreError;

/// A loaded, validated HR source. Cheap to clone (the stage is shared).
#[derive(Debug, Clone)]
pub struct HrSource {
    pub path: PathBuf,
    stage: Arc<HrStage>,
}

impl HrSource {
    pub fn len(&self) -> usize {
        self.stage.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stage.is_empty()
    }

    /// Where the records are, for the plan to join with the mirror.
    pub fn stage(&self) -> &HrStage {
        &self.stage
    }

    /// Every record, in file order. This loads them all: for tests and
    /// small sources, never for planning.
    pub async fn records(&self) -> Result<Vec<HrRecord>, StoreError> {
        let staged = self.stage.records().await?;
        Ok(staged.into_iter().map(from_staged).collect())
    }
}

/// The kind codes of a staged value.
impl ValueKind {
    pub const fn code(self) -> u8 {
        match self {
            ValueKind::Direct => 0,
            ValueKind::Name => 1,
            ValueKind::Email => 2,
        }
    }

    fn from_code(code: u8) -> ValueKind {
        match code {
            1 => ValueKind::Name,
            2 => ValueKind::Email,
            _ => ValueKind::Direct,
        }
    }
}

fn location_code(l: Location) -> (u8, u64) {
    match l {
        Location::File => (0, 0),
        Location::Line(n) => (1, n),
        Location::Record(n) => (2, n),
    }
}

fn location_of(code: (u8, u64)) -> Location {
    match code {
        (1, n) => Location::Line(n),
        (2, n) => Location::Record(n),
        _ => Location::File,
    }
}

/// A record as the stage keeps it; `given` is its email as written.
pub(super) fn to_staged(r: HrRecord, given: String) -> StagedRecord {
    let mut values: [Option<(u8, Box<str>)>; SLOTS] = Default::default();
    for (slot, v) in values.iter_mut().zip(r.values) {
        *slot = v.map(|v| (v.kind.code(), v.text));
    }
    StagedRecord {
        email: r.email,
        given,
        location: location_code(r.location),
        values,
    }
}

/// A staged record read back (by the plan, or [`HrSource::records`]).
pub fn from_staged(s: StagedRecord) -> HrRecord {
    let mut values: [Option<HrValue>; 14] = Default::default();
    for (slot, v) in values.iter_mut().zip(s.values) {
        *slot = v.map(|(k, text)| HrValue {
            kind: ValueKind::from_code(k),
            text,
        });
    }
    HrRecord {
        email: s.email,
        location: location_of(s.location),
        values,
    }
}

/// Parse and check `bytes`, staging every record; all the problems, the
/// duplicate emails among them, or the staged source.
pub(super) async fn load_staged(
    path: &Path,
    format: Format,
    bytes: Vec<u8>,
    mapping: &Mapping,
) -> Result<HrSource, HrErrors> {
    let stage_failed = |e: StoreError| {
        let mut c = Collector::new(path);
        c.push(
            Location::File,
            None,
            format!(
                "cannot stage the HR source in the temporary directory {} \
                 (set TMPDIR to a writable directory with room for it): {e}",
                std::env::temp_dir().display()
            ),
        );
        c.into_errors()
    };
    let mut writer = HrStage::create().await.map_err(stage_failed)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let (owned_path, mapping) = (path.to_owned(), mapping.clone());
    let parse = tokio::task::spawn_blocking(move || {
        let mut c = Collector::with_sink(&owned_path, tx);
        super::parse_into(format, &bytes, &mut c, &mapping);
        c.finish();
        c
    });
    let mut staged = Ok(());
    while let Some(batch) = rx.recv().await {
        if staged.is_ok() {
            staged = writer.insert(&batch).await;
        }
    }
    let mut c = parse.await.expect("the HR parser does not panic");
    staged.map_err(stage_failed)?;
    let (stage, duplicates) = writer.finish().await.map_err(stage_failed)?;
    for d in duplicates {
        c.push(
            location_of(d.location),
            Some("email_id"),
            format!(
                "duplicate email '{}' (emails are case-insensitive): first at {}",
                d.given,
                location_of(d.first)
            ),
        );
    }
    if c.errors.is_empty() && c.more == 0 {
        Ok(HrSource {
            path: path.to_owned(),
            stage: Arc::new(stage),
        })
    } else {
        // The duplicates were found last; the errors read in file order.
        c.errors.sort_by_key(|e| e.location);
        Err(c.into_errors())
    }
}

/// A source loaded and read back whole, for the loader's own tests.
#[cfg(test)]
#[derive(Debug)]
pub(super) struct Loaded {
    pub records: Vec<HrRecord>,
}

/// Load on a runtime of its own and read every record back (tests).
#[cfg(test)]
pub(super) fn load_now(
    path: &Path,
    format: Format,
    bytes: &[u8],
    mapping: &Mapping,
) -> Result<Loaded, HrErrors> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a test runtime");
    rt.block_on(async {
        let source = super::load_bytes_mapped(path, format, bytes, mapping).await?;
        let records = source.records().await.expect("the stage reads back");
        Ok(Loaded { records })
    })
}
