//! Listing cursors: the filter a `next_token` is bound to, and issuing and
//! opening the signed, expiring tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::CURSOR_TTL;
use crate::sim::org::{Status, User};
use crate::sim::{chrono_dur, hex, State};

/// The filter a listing cursor is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ListFilter {
    pub(super) status: Option<Status>,
    pub(super) paid: Option<bool>,
    pub(super) by_usage: bool,
    pub(super) modified_after: Option<DateTime<Utc>>,
}

impl ListFilter {
    fn fingerprint(&self) -> String {
        let text = format!(
            "status={};plan={:?};usage={};modified_after={:?}",
            self.status.map_or("", Status::as_str),
            self.paid,
            self.by_usage,
            self.modified_after.map(|t| t.timestamp_millis()),
        );
        hex(&Sha256::digest(text.as_bytes())[..8])
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct CursorPayload {
    /// Filter fingerprint.
    f: String,
    /// Last id returned.
    pub(super) i: u64,
    /// Its usage score (`sort_by=usage` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) u: Option<u32>,
    /// Issue time, epoch milliseconds.
    t: i64,
    /// Pages served so far in this listing (for the listing faults).
    #[serde(default)]
    pub(super) n: u32,
}

pub(super) enum CursorError {
    Invalid,
    Expired,
    Mismatch,
}

impl State {
    fn cursor_mac(&self, payload: &[u8]) -> String {
        let mut h = Sha256::new();
        h.update(self.cursor_secret);
        h.update(payload);
        hex(&h.finalize()[..12])
    }

    pub(super) fn issue_cursor(
        &self,
        filter: &ListFilter,
        last: &User,
        page: u32,
        at: DateTime<Utc>,
    ) -> String {
        let payload = CursorPayload {
            f: filter.fingerprint(),
            i: last.id,
            u: filter.by_usage.then_some(last.usage),
            t: at.timestamp_millis(),
            n: page,
        };
        let bytes = serde_json::to_vec(&payload).unwrap_or_default();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&bytes),
            self.cursor_mac(&bytes)
        )
    }

    pub(super) fn open_cursor(
        &self,
        token: &str,
        filter: &ListFilter,
        at: DateTime<Utc>,
    ) -> Result<CursorPayload, CursorError> {
        let (b64, mac) = token.split_once('.').ok_or(CursorError::Invalid)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|_| CursorError::Invalid)?;
        if self.cursor_mac(&bytes) != mac {
            return Err(CursorError::Invalid);
        }
        let p: CursorPayload = serde_json::from_slice(&bytes).map_err(|_| CursorError::Invalid)?;
        if p.f != filter.fingerprint() || p.u.is_some() != filter.by_usage {
            return Err(CursorError::Mismatch);
        }
        let issued = DateTime::<Utc>::from_timestamp_millis(p.t).ok_or(CursorError::Invalid)?;
        if at - issued >= chrono_dur(CURSOR_TTL.mul_f64(self.scale)) {
            return Err(CursorError::Expired);
        }
        Ok(p)
    }
}
