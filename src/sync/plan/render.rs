//! The human table of `cliq-sync plan` (the `--json` shape is the `Plan`
//! itself).

use std::fmt::Write as _;
use std::time::Duration;

use super::{conflicts, Conflict, Plan};

/// The human table of `cliq-sync plan`.
pub fn render(plan: &Plan) -> String {
    let s = &plan.summary;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Plan from {} ({} HR records) against {} Cliq users in the mirror ({} matched).",
        plan.source, s.hr_records, s.cliq_users, s.matched
    );
    let _ = writeln!(out, "Managed fields: {}", plan.managed_fields.join(", "));
    render_updates(&mut out, plan);
    render_skipped_conflicts(&mut out, plan);
    render_adds_and_blocked(&mut out, plan);
    render_lists(&mut out, plan);
    render_totals(&mut out, plan);
    render_verdict(&mut out, plan);
    // Names, emails and values come from Cliq and HR: never raw to a terminal.
    crate::text::escape_lines(&out).into_owned()
}

/// A value with the name of what it refers to, if any.
fn show(v: Option<&str>, name: &Option<String>) -> String {
    let base = v.unwrap_or("(empty)");
    match name {
        Some(n) => format!("{base} ({n})"),
        None => base.to_owned(),
    }
}

fn render_updates(out: &mut String, plan: &Plan) {
    if plan.updates.is_empty() {
        return;
    }
    let s = &plan.summary;
    let _ = writeln!(
        out,
        "\nUpdates ({} users, {} fields):",
        s.updates, s.field_changes
    );
    let _ = writeln!(
        out,
        "  {:<36} {:<20} {:<18} {:<28} -> desired",
        "email", "user id", "field", "current"
    );
    for u in &plan.updates {
        for c in &u.changes {
            let _ = writeln!(
                out,
                "  {:<36} {:<20} {:<18} {:<28} -> {}",
                u.email,
                u.user_id,
                c.field,
                show(c.current.as_deref(), &c.current_name),
                show(Some(&c.desired), &c.desired_name)
            );
            if let Some(k) = &c.conflict {
                let _ = writeln!(out, "  {:<36} {}", "", conflict_note(k));
            }
        }
    }
}

/// The line under a change that overwrites a hand edit in Cliq.
fn conflict_note(k: &Conflict) -> String {
    format!(
        "! overwrites a change made in Cliq on {} (seen by a {} pull; we pushed {} on {})",
        conflicts::day(&k.changed_at),
        k.observed_by,
        k.pushed_value.as_deref().unwrap_or("(empty)"),
        conflicts::day(&k.pushed_at)
    )
}

/// `[push] on_conflict = "skip"`: the changes left out, with Cliq's value.
fn render_skipped_conflicts(out: &mut String, plan: &Plan) {
    if plan.skipped_conflicts.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nSkipped: changed in Cliq since our last push, kept ([push] on_conflict = \"skip\") ({}):",
        plan.skipped_conflicts.len()
    );
    for k in &plan.skipped_conflicts {
        let _ = writeln!(
            out,
            "  {:<36} {:<20} {:<18} Cliq has {} (changed in Cliq on {}); HR's {} not sent",
            k.email,
            k.user_id,
            k.field,
            k.conflict.cliq_value.as_deref().unwrap_or("(empty)"),
            conflicts::day(&k.conflict.changed_at),
            k.desired
        );
    }
}

fn render_adds_and_blocked(out: &mut String, plan: &Plan) {
    let s = &plan.summary;
    if !plan.adds.is_empty() {
        let _ = writeln!(out, "\nAdds ({} people):", s.adds);
        for a in &plan.adds {
            let fields: Vec<String> = a.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(out, "  {:<36} {}", a.email, fields.join(", "));
        }
    }
    if !plan.blocked.is_empty() {
        let _ = writeln!(out, "\nBlocked ({}):", s.blocked);
        for b in &plan.blocked {
            let _ = writeln!(
                out,
                "  {:<36} {:<14} {}",
                b.email,
                b.field.unwrap_or("(all)"),
                b.reason
            );
        }
    }
}

/// A titled list, the first 20 items (the rest are in `--json`).
fn list(out: &mut String, title: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{title} ({}):", items.len());
    for e in items.iter().take(20) {
        let _ = writeln!(out, "  {e}");
    }
    if items.len() > 20 {
        let _ = writeln!(out, "  … and {} more (see --json)", items.len() - 20);
    }
}

fn render_lists(out: &mut String, plan: &Plan) {
    list(
        out,
        "In HR but not in Cliq, not added (push.create_missing = false)",
        &plan.missing_in_cliq,
    );
    list(
        out,
        "Added earlier, waiting for a full pull to see them",
        &plan.pending_adds,
    );
    // The Users API cannot deactivate: say what to do instead.
    list(
        out,
        "In Cliq but not in HR (never touched: deactivate leavers in Cliq's admin console)",
        &not_in_hr_lines(plan),
    );
    let excluded: Vec<String> = plan
        .excluded
        .iter()
        .map(|x| format!("{:<36} {:<32} {}", x.email, x.rule, x.reason))
        .collect();
    list(
        out,
        "Excluded by [push] include/exclude/exclude_departments (never written)",
        &excluded,
    );
}

fn not_in_hr_lines(plan: &Plan) -> Vec<String> {
    plan.not_in_hr
        .iter()
        .map(|u| {
            let mut line = format!(
                "{} ({}, {})",
                u.email.as_deref().unwrap_or("(no email)"),
                u.user_id,
                u.status.as_deref().unwrap_or("unknown")
            );
            if let (Some(since), Some(secs)) = (&u.missing_since, u.missing_seconds) {
                let _ = write!(
                    line,
                    " missing from HR since {since} ({})",
                    humantime::format_duration(Duration::from_secs(secs.max(0) as u64))
                );
            }
            line
        })
        .collect()
}

/// The request count and the time Cliq's quotas make it take.
fn render_totals(out: &mut String, plan: &Plan) {
    let s = &plan.summary;
    let _ = writeln!(
        out,
        "\n{} change{} ({} PUT, {} POST); at least {} under Cliq's quotas.",
        s.changes,
        if s.changes == 1 { "" } else { "s" },
        s.update_requests,
        s.add_requests,
        humantime::format_duration(Duration::from_secs(plan.min_duration().as_secs()))
    );
    if s.conflicts > 0 {
        let _ = writeln!(
            out,
            "Hand edits in Cliq these changes overwrite: {} (marked with !; [push] on_conflict = \"{}\").",
            s.conflicts,
            plan.on_conflict.as_str()
        );
    }
}

/// Why there is nothing to push, when there is nothing.
fn render_verdict(out: &mut String, plan: &Plan) {
    let s = &plan.summary;
    let nothing = plan.is_empty() && plan.blocked.is_empty() && plan.skipped_conflicts.is_empty();
    if nothing && !plan.excluded.is_empty() {
        // Not "Cliq matches HR": the excluded people were not compared.
        let _ = writeln!(
            out,
            "Nothing to push for the people in scope; the {} excluded above are never written.",
            s.excluded
        );
    } else if nothing {
        let _ = writeln!(out, "Nothing to push: Cliq already matches the HR source.");
    } else if plan.is_empty() && plan.blocked.is_empty() {
        let _ = writeln!(
            out,
            "Nothing to push: the other differences were changed in Cliq and are kept (above)."
        );
    } else if plan.is_empty() {
        let _ = writeln!(
            out,
            "Nothing can be pushed now: {} blocked item{} above (see the reasons).",
            s.blocked,
            if s.blocked == 1 { "" } else { "s" }
        );
    }
}
