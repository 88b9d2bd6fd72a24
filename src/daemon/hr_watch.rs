//! The daemon's view of the HR file: a version is used only once it has
//! settled.
//!
//! The daemon reads the file on its push schedule, and an exporter may be
//! halfway through writing it: a half-written CSV is often still valid (a
//! truncated last value), and was pushed. So the daemon keeps the file's
//! fingerprint (length, mtime, SHA-256 of the content) and the time it first
//! saw that version, and uses a version only once it has been unchanged for
//! `[hr] settle`. The bytes loaded are exactly the bytes fingerprinted, read
//! in one go with the metadata unchanged around the read. Anything else (the
//! file changing during the wait, unreadable, changing during the read)
//! means no push on this tick, with a log line saying why.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::hr::{HrErrors, HrSource};

/// One version of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    len: u64,
    mtime: Option<SystemTime>,
    sha256: [u8; 32],
}

/// The file read whole, and its fingerprint.
struct Read {
    fingerprint: Fingerprint,
    bytes: Vec<u8>,
}

/// Why there is no usable HR source on this tick.
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    #[error("cannot read the HR source {path} whole: {why}; no push until it can be read")]
    Unreadable { path: PathBuf, why: String },
    #[error(
        "the HR source {path} is still being written (it changed within the last {settle}); \
         no push on this tick. Publish exports atomically: write hr.csv.tmp in the same \
         directory, then mv it over hr.csv"
    )]
    Unsettled { path: PathBuf, settle: String },
    #[error("the HR source {path} changed while it was being read; no push on this tick")]
    ChangedDuringRead { path: PathBuf },
    #[error("{0}; no push until it is fixed")]
    Invalid(HrErrors),
    #[error("stopping")]
    Stopped,
}

fn read_whole(path: &Path) -> Result<Read, Unusable> {
    let unreadable = |why: String| Unusable::Unreadable {
        path: path.to_owned(),
        why,
    };
    let before = std::fs::metadata(path).map_err(|e| unreadable(e.to_string()))?;
    let bytes = std::fs::read(path).map_err(|e| unreadable(e.to_string()))?;
    let after = std::fs::metadata(path).map_err(|e| unreadable(e.to_string()))?;
    // A writer between the two looks: this read may mix two versions.
    let (mtime, len) = (after.modified().ok(), after.len());
    if before.len() != len || before.modified().ok() != mtime || bytes.len() as u64 != len {
        return Err(Unusable::ChangedDuringRead {
            path: path.to_owned(),
        });
    }
    Ok(Read {
        fingerprint: Fingerprint {
            len,
            mtime,
            sha256: Sha256::digest(&bytes).into(),
        },
        bytes,
    })
}

/// What the daemon knows about the file between ticks.
pub struct HrWatch {
    path: PathBuf,
    settle: Duration,
    /// The version last seen, and since when it has not changed.
    seen: Option<(Fingerprint, DateTime<Utc>)>,
    /// The source loaded from a settled version, and that version.
    loaded: Option<(Fingerprint, HrSource)>,
    /// `[hr.columns]`/`[hr.derive]`/`[hr.values]`, compiled at config load.
    mapping: std::sync::Arc<crate::hr::Mapping>,
}

impl HrWatch {
    pub fn new(path: PathBuf, settle: Duration) -> Self {
        Self {
            path,
            settle,
            seen: None,
            loaded: None,
            mapping: Default::default(),
        }
    }

    /// Load the source through this mapping.
    pub fn with_mapping(mut self, mapping: std::sync::Arc<crate::hr::Mapping>) -> Self {
        self.mapping = mapping;
        self
    }

    /// Note a version seen now; returns since when it has been unchanged.
    fn note(&mut self, fp: &Fingerprint, now: DateTime<Utc>) -> DateTime<Utc> {
        match &self.seen {
            Some((seen, since)) if seen == fp => *since,
            _ => {
                self.seen = Some((fp.clone(), now));
                now
            }
        }
    }

    /// The source from the current version of the file once it has been
    /// unchanged for `settle`, waiting for the rest of that period if
    /// needed. `Ok((source, true))` when this call loaded a new version.
    pub async fn settled(
        &mut self,
        clock: &Clock,
        cancel: &CancellationToken,
    ) -> Result<(&HrSource, bool), Unusable> {
        let mut read = self.read()?;
        let since = self.note(&read.fingerprint, clock.now());
        let ready_at = since + chrono::Duration::from_std(self.settle).unwrap_or_default();
        if clock.now() < ready_at {
            tokio::select! {
                _ = cancel.cancelled() => return Err(Unusable::Stopped),
                _ = clock.sleep_until(ready_at) => {}
            }
            read = self.read()?;
            if self.note(&read.fingerprint, clock.now()) != since {
                return Err(Unusable::Unsettled {
                    path: self.path.clone(),
                    settle: humantime::format_duration(self.settle).to_string(),
                });
            }
        }
        let fresh = self
            .loaded
            .as_ref()
            .is_none_or(|(fp, _)| *fp != read.fingerprint);
        if fresh {
            // Forget the old source first: a file we know is no longer what
            // HR exports must not be pushed from, even if the new one is bad.
            self.loaded = None;
            // Staging the records waits on SQLite's thread: in paused time
            // the clock must not jump meanwhile.
            let hold = clock.hold();
            let source = crate::hr::load_read(&self.path, read.bytes, &self.mapping)
                .await
                .map_err(Unusable::Invalid)?;
            drop(hold);
            self.loaded = Some((read.fingerprint, source));
        }
        let (_, source) = self.loaded.as_ref().expect("loaded above");
        Ok((source, fresh))
    }

    /// The source last loaded from a settled version, if it is still current.
    pub fn source(&self) -> Option<&HrSource> {
        self.loaded.as_ref().map(|(_, s)| s)
    }

    fn read(&mut self) -> Result<Read, Unusable> {
        read_whole(&self.path).inspect_err(|_| self.loaded = None)
    }
}
