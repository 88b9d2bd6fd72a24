//! The demo's human report: what happened, requests, wall time, where to look.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::Duration;

use super::{DemoReport, Mutation};
use crate::cliq::Endpoint;
use crate::sync::plan::Plan;

/// The plan as `cliq-sync plan` shows it, with at most `rows` change lines.
pub(super) fn render_plan(plan: &Plan, rows: usize) -> String {
    let s = &plan.summary;
    let mut out = String::new();
    // Names rather than ids: the reader knows departments by name.
    let show = |v: &Option<String>, name: &Option<String>| -> String {
        name.clone()
            .or_else(|| v.clone())
            .unwrap_or_else(|| "(empty)".into())
    };
    let _ = writeln!(
        out,
        "  {} HR records, {} matched in the mirror; {} users to update ({} fields), {} to add:",
        s.hr_records, s.matched, s.updates, s.field_changes, s.adds
    );
    let _ = writeln!(
        out,
        "  {:<38} {:<14} {:<24} -> desired",
        "email", "field", "current"
    );
    let lines: Vec<String> = plan
        .updates
        .iter()
        .flat_map(|u| {
            u.changes.iter().map(move |c| {
                format!(
                    "  {:<38} {:<14} {:<24} -> {}",
                    u.email,
                    c.field,
                    show(&c.current, &c.current_name),
                    show(&Some(c.desired.clone()), &c.desired_name)
                )
            })
        })
        .chain(plan.adds.iter().map(|a| {
            format!(
                "  {:<38} {:<14} {:<24} -> {} fields",
                a.email,
                "(new person)",
                "",
                a.fields.len()
            )
        }))
        .collect();
    for l in lines.iter().take(rows) {
        let _ = writeln!(out, "{}", l.trim_end());
    }
    if lines.len() > rows {
        let _ = writeln!(
            out,
            "  … and {} more (all of them: cliq-sync plan, or the pushes table)",
            lines.len() - rows
        );
    }
    if s.blocked > 0 {
        let _ = writeln!(out, "  {} blocked (see cliq-sync plan)", s.blocked);
    }
    out
}

pub(super) fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn window_text(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

impl DemoReport {
    /// The human report.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        self.header_text(&mut o);
        self.users_text(&mut o);
        self.plan_and_pushes_text(&mut o);
        self.changes_text(&mut o);
        self.undo_text(&mut o);
        self.requests_text(&mut o);
        self.wall_text(&mut o);
        self.explore_text(&mut o);
        o
    }

    /// What ran where, at which quotas.
    fn header_text(&self, o: &mut String) {
        let list = Endpoint::ListUsers
            .documented_quota()
            .scaled(self.time_scale);
        let _ = writeln!(o, "\ncliq-sync demo: what happened");
        let _ = writeln!(o, "============================\n");
        let _ = writeln!(
            o,
            "Simulated Cliq org: {} users (seed {}) on {} (loopback; no network, no config).",
            self.org_users, self.seed, self.sim_url
        );
        let _ = writeln!(
            o,
            "Quotas as documented, windows and locks scaled ×{}: {} listing requests per {}, \
             a {} lock if exceeded (real Cliq: per {}, {} lock).",
            self.time_scale,
            list.requests,
            window_text(list.per),
            window_text(list.lock),
            window_text(Endpoint::ListUsers.documented_quota().per),
            window_text(Endpoint::ListUsers.documented_quota().lock),
        );
        let _ = writeln!(
            o,
            "The scheduler uses the same scaled quotas, with a {} ms safety margin per window.",
            self.safety_margin.as_millis()
        );
    }

    /// Users mirrored, and the first full pull.
    fn users_text(&self, o: &mut String) {
        let _ = writeln!(o, "\nUsers mirrored");
        let total = self.users_mirrored();
        let by: Vec<String> = self
            .users_by_status
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        let _ = writeln!(
            o,
            "  {total} users in {} ({} seeded + {} added by the push): {}",
            self.mirror.display(),
            self.org_users,
            self.push.adds_applied,
            by.join(", ")
        );
        let _ = writeln!(
            o,
            "  first full pull: {} users in {} pages, {} requests, {}",
            self.full_pull.users_seen,
            self.full_pull.pages,
            self.full_pull.requests,
            secs(self.full_pull.elapsed)
        );
    }

    /// The plan and the push.
    fn plan_and_pushes_text(&self, o: &mut String) {
        let _ = writeln!(o, "\nPlan from {}", self.hr_file.display());
        o.push_str(&self.plan_text);
        self.held_text(o);

        let _ = writeln!(o, "\nPushes");
        let p = &self.push;
        let _ = writeln!(
            o,
            "  {} updates applied, {} people added, {} failed, {} skipped: {} requests in {:.1} s",
            p.updates_applied, p.adds_applied, p.failed, p.skipped, p.requests, p.elapsed_secs
        );
        for f in &p.failures {
            let _ = writeln!(o, "  failed {} {}: {}", f.action, f.email, f.message);
        }
    }

    /// held → approve → push, with what each step asked of Cliq.
    fn held_text(&self, o: &mut String) {
        let h = &self.held;
        let _ = writeln!(o, "\nHeld plan and approval");
        let _ = writeln!(
            o,
            "  With [push] max_changes_per_run = {} (the demo sets it below this plan's {} \
             changes), the push was held: {} requests, {} writes.",
            h.threshold,
            self.plan.changes,
            h.held_requests.total,
            h.held_requests.puts + h.held_requests.posts
        );
        let _ = writeln!(o, "  cliq-sync approve lists:");
        for e in &h.listed {
            let _ = writeln!(
                o,
                "    {}  {} run {}, {} changes, held {}",
                e.id, e.kind, e.run_id, e.changes, e.held_at
            );
        }
        let _ = writeln!(
            o,
            "  cliq-sync approve {}: {}, {} requests.",
            h.plan_id,
            if h.approved.as_ref().is_some_and(|e| e.approved) {
                "approved for the next push"
            } else {
                "NOT approved"
            },
            h.approve_requests.total
        );
        let _ = writeln!(
            o,
            "  The next push sent exactly that plan: {} PUT and {} POST requests.",
            h.push_requests.puts, h.push_requests.posts
        );
    }

    /// `undo RUN` of the push.
    fn undo_text(&self, o: &mut String) {
        let u = &self.undo;
        let _ = writeln!(o, "\nUndo");
        let _ = writeln!(
            o,
            "  cliq-sync undo {}: {} updates sent back, {} PUT requests (run {}); refused: {}.",
            u.report.undoes_run.unwrap_or_default(),
            u.report.updates_applied,
            u.requests.puts,
            u.report.run_id.unwrap_or_default(),
            refused_summary(&u.report.refused)
        );
        if let Some(ex) = &u.example {
            let _ = writeln!(
                o,
                "  {} {}: {:?} before the push, {:?} pushed, {:?} in Cliq after the undo.",
                ex.email, ex.field, ex.before, ex.pushed, ex.after_undo
            );
        }
    }

    /// The admin's edits and the pulls that found them.
    fn changes_text(&self, o: &mut String) {
        let _ = writeln!(o, "\nChanges found");
        self.mutations_text(o);
        let tracked: BTreeSet<&str> = self
            .mutations
            .iter()
            .filter(|m| m.tracked)
            .map(|m| m.user_id.as_str())
            .collect();
        let inc_ids = self.incremental_changed_ids();
        let found = tracked.iter().filter(|id| inc_ids.contains(**id)).count();
        let _ = writeln!(
            o,
            "  incremental pull: listed {} users modified since the last pull (pushed or edited), \
             {} changed in the mirror ({} of the {} tracked edits), {} requests, {}",
            self.incremental.users_seen,
            self.incremental.changed,
            found,
            tracked.len(),
            self.incremental.requests,
            secs(self.incremental.elapsed)
        );
        let untracked: Vec<&Mutation> = self.mutations.iter().filter(|m| !m.tracked).collect();
        let fin_ids = self.final_changed_ids();
        let _ = writeln!(
            o,
            "  full pull:        {} users, {} added (the new hires), {} changed ({}), {} requests, {}",
            self.final_full.users_seen,
            self.final_full.added,
            self.final_full.changed,
            if untracked.iter().all(|m| fin_ids.contains(&m.user_id)) {
                "the display-name edit only a full pull sees"
            } else {
                "the display-name edit was NOT seen"
            },
            self.final_full.requests,
            secs(self.final_full.elapsed)
        );
        let _ =
            writeln!(
            o,
            "  plan now: {} update{} ({} field{}): the edits to HR-managed people; the next push \
             sets them back",
            self.drift.updates,
            if self.drift.updates == 1 { "" } else { "s" },
            self.drift.field_changes,
            if self.drift.field_changes == 1 { "" } else { "s" },
        );
    }

    /// The admin's edits in Cliq, and which a pull can see.
    fn mutations_text(&self, o: &mut String) {
        let _ = writeln!(o, "  An admin then edited the org in Cliq:");
        for m in &self.mutations {
            let _ = writeln!(
                o,
                "    {:<38} {:<14} {:?} -> {:?}{}",
                m.email,
                m.field,
                m.from,
                m.to,
                match (m.tracked, m.in_hr) {
                    (false, _) => "  (not seen by modified_after)",
                    (true, true) => "  (an HR-managed person)",
                    (true, false) => "",
                }
            );
        }
    }

    /// Requests per endpoint against the quotas.
    fn requests_text(&self, o: &mut String) {
        let _ = writeln!(o, "\nRequests per endpoint (counted by the simulator)");
        let _ = writeln!(
            o,
            "  {:<14} {:>8}  {:>14}  {:>13}  {:>9}",
            "endpoint", "requests", "quota", "most in window", "throttled"
        );
        for e in &self.endpoints {
            let most = match e.max_in_window {
                Some(n) => n.to_string(),
                None => format!("{} minted", self.tokens_minted),
            };
            let _ = writeln!(
                o,
                "  {:<14} {:>8}  {:>14}  {:>13}  {:>9}",
                e.endpoint.name(),
                e.requests,
                format!("{} / {}", e.quota, window_text(e.window)),
                most,
                e.throttled
            );
        }
        let _ = writeln!(
            o,
            "  {} throttle responses, {} locks: the scheduler waited {} for room in a window instead.",
            self.throttled_total(),
            self.locks_imposed,
            match self.scheduler_waits {
                1 => "once".to_owned(),
                n => format!("{n} times"),
            }
        );
    }

    /// Wall time per step.
    fn wall_text(&self, o: &mut String) {
        let _ = writeln!(o, "\nWall time");
        let steps: Vec<String> = self
            .steps
            .iter()
            .map(|(s, d)| format!("{s} {}", secs(*d)))
            .collect();
        let _ = writeln!(o, "  {} in all: {}", secs(self.wall), steps.join(", "));
        let _ = writeln!(
            o,
            "  At Cliq's real quotas the push alone ({} PUT at {} per minute) needs at least {}.",
            self.plan.update_requests,
            Endpoint::UpdateUser.documented_quota().requests,
            humantime::format_duration(Duration::from_secs(self.push_at_real_quotas.as_secs()))
        );
    }

    /// Where to look next.
    fn explore_text(&self, o: &mut String) {
        let db = shell_quote(&self.mirror.display().to_string());
        let _ = writeln!(o, "\nExplore the mirror");
        let _ = writeln!(
            o,
            "  sqlite3 {db} \"SELECT status, count(*) FROM users GROUP BY status\""
        );
        let _ = writeln!(
            o,
            "  sqlite3 -header -column {db} \"SELECT c.observed_at, c.source, u.email_id, c.field, \
             c.old_value, c.new_value FROM user_changes c JOIN users u ON u.id = c.user_id \
             WHERE c.field <> 'user' ORDER BY c.id DESC LIMIT 20\""
        );
        let _ = writeln!(
            o,
            "  sqlite3 -header -column {db} \"SELECT email_id, action, status, \
             json_extract(fields_json, '$.fields') AS sent FROM pushes ORDER BY id LIMIT 10\""
        );
        let _ = writeln!(
            o,
            "  sqlite3 -header -column {db} \"SELECT id, kind, status, requests, users_seen, \
             users_changed FROM sync_runs\""
        );
        let _ = writeln!(
            o,
            "The HR file is {}; the demo starts afresh each run.",
            self.hr_file.display()
        );
    }
}

/// "2 cannot_undo (adds), 1 changed_since": the refused parts by code.
fn refused_summary(refused: &[crate::sync::push::Refused]) -> String {
    let mut by: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in refused {
        *by.entry(r.code).or_default() += 1;
    }
    if by.is_empty() {
        return "none".to_owned();
    }
    let why = |code: &str| match code {
        "cannot_undo" => " (adds: the Users API has no deletion)",
        "changed_since" => " (edited in Cliq since the push)",
        _ => "",
    };
    by.iter()
        .map(|(code, n)| format!("{n} {code}{}", why(code)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Quote a path for a POSIX shell only if it needs it.
fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
