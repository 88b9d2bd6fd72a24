//! The watermark and Cliq's clock: when an incremental pull can trust
//! `modified_after`, what a complete listing earns, and the skew logged
//! from the first answer.

use chrono::{DateTime, Utc};

use super::{PullKind, PullOptions, PullReport, CLOCK_SKEW_WARN, MODIFIED_AFTER_HORIZON};
use crate::cliq::client::CliqClient;

/// Decide the kind of pull: an incremental one needs a watermark recent
/// enough for `modified_after` to still see everything since.
pub fn effective_kind(
    requested: PullKind,
    watermark: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    opts: &PullOptions,
) -> (PullKind, Option<String>) {
    if requested == PullKind::Full {
        return (PullKind::Full, None);
    }
    let margin = chrono::Duration::from_std(opts.window_margin).unwrap_or_default();
    match watermark {
        None => (
            PullKind::Full,
            Some("no watermark yet: the first pull is a full one".into()),
        ),
        Some(w) if w < now - MODIFIED_AFTER_HORIZON + margin => (
            PullKind::Full,
            Some(format!(
                "the watermark ({}) is older than Cliq's 7-day modified_after window minus the margin",
                crate::clock::to_db(w)
            )),
        ),
        Some(_) => (PullKind::Incremental, None),
    }
}

/// The watermark a complete listing earns: Cliq's `Date` of its first
/// answer. The header is already truncated to the second, so it never lies
/// after a modification the listing could have missed; `[sync] overlap` is
/// subtracted when it is used. Without the header: our clock at the start.
pub(super) fn next_watermark(
    cliq_date: Option<DateTime<Utc>>,
    started_at: DateTime<Utc>,
) -> DateTime<Utc> {
    match cliq_date {
        Some(date) => date,
        None => {
            tracing::warn!(
                "Cliq's answer had no readable Date header: the watermark follows this host's \
                 clock, so a clock skew larger than [sync] overlap can hide changes until the \
                 next full pull; keep the host clock synchronised (NTP)"
            );
            started_at
        }
    }
}

/// Record Cliq's clock against ours from the first listing answer: the
/// report and `cliq_sync_clock_skew_seconds` get it, and a skew beyond
/// [`CLOCK_SKEW_WARN`] is a warning.
pub(super) fn note_first_answer(
    client: &CliqClient,
    report: &mut PullReport,
    cliq_date: Option<DateTime<Utc>>,
    ours: DateTime<Utc>,
) {
    report.cliq_date = cliq_date;
    let Some(date) = cliq_date else { return };
    let skew = date - ours;
    report.clock_skew_ms = Some(skew.num_milliseconds());
    client.record_clock_skew(skew);
    if skew.abs() > CLOCK_SKEW_WARN {
        tracing::warn!(
            skew_seconds = skew.num_seconds(),
            cliq_date = %crate::clock::to_db(date),
            our_clock = %crate::clock::to_db(ours),
            "clock skew: Cliq's clock differs from this host's by more than {}s; the watermark \
             follows Cliq's clock, but check the host's time synchronisation (NTP)",
            CLOCK_SKEW_WARN.num_seconds()
        );
    }
}
