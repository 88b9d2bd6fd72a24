//! The live bar of `sync` and `push`: drawn on stderr only when stderr is a
//! terminal, never under `--json` and never by the daemon (which does not
//! attach one). It follows the progress that pulls and pushes publish to
//! the store's hub ([`crate::mirror::progress::ProgressHub`]), the same
//! figures as the run's row and the progress log line.
//!
//! Log lines and the bar share stderr: [`LogWriter`] (the tracing writer
//! of the CLI) writes each log line with the bar suspended, so a line never
//! lands in the middle of the bar.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::mirror::progress::RunProgress;
use crate::mirror::Store;
use crate::sync::progress::describe;

/// The bar on screen, if any: [`LogWriter`] suspends it around log lines.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Whether to draw a bar: only for a person at a terminal. Output for
/// machines (`--json`, a pipe, the journal) gets the progress log lines.
pub fn wanted(stderr_is_terminal: bool, json: bool) -> bool {
    stderr_is_terminal && !json
}

/// A bar following the runs of `store`'s opener until [`LiveBar::finish`].
pub struct LiveBar {
    bar: ProgressBar,
    task: tokio::task::JoinHandle<()>,
}

impl LiveBar {
    /// A bar on stderr when [`wanted`] there, else `None`.
    pub fn attach(store: &Store, json: bool) -> Option<LiveBar> {
        wanted(std::io::stderr().is_terminal(), json)
            .then(|| Self::attach_to(store, ProgressDrawTarget::stderr()))
    }

    /// A bar drawn on `target` (tests draw on a recording terminal).
    pub fn attach_to(store: &Store, target: ProgressDrawTarget) -> LiveBar {
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or(ProgressStyle::default_spinner()),
        );
        set_active(Some(bar.clone()));
        let mut rx = store.progress().subscribe();
        let drawn = bar.clone();
        let clock = store.clock().clone();
        let task = tokio::spawn(async move {
            loop {
                let current = rx.borrow_and_update().clone();
                if let Some(p) = current {
                    draw(&drawn, &p, clock.now());
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        });
        LiveBar { bar, task }
    }

    /// Remove the bar (the command's report follows on stdout).
    pub fn finish(self) {
        self.task.abort();
        set_active(None);
        self.bar.finish_and_clear();
    }
}

fn set_active(bar: Option<ProgressBar>) {
    if let Ok(mut active) = ACTIVE.lock() {
        *active = bar;
    }
}

fn draw(bar: &ProgressBar, p: &RunProgress, now: chrono::DateTime<chrono::Utc>) {
    let (done, total) = p.units();
    // Without an estimate of the total (a first or an incremental pull) a
    // bar would lie: a spinner and the figures instead.
    let known = total.is_some();
    if bar.length().is_some() != known {
        let template = if known {
            "{bar:30} {msg}"
        } else {
            "{spinner} {msg}"
        };
        bar.set_style(
            ProgressStyle::with_template(template).unwrap_or(ProgressStyle::default_bar()),
        );
    }
    match total {
        Some(total) => bar.set_length(total.max(done)),
        None => bar.unset_length(),
    }
    bar.set_position(done);
    let eta_s = p.eta_at.map(|at| (at - now).num_seconds().max(0));
    bar.set_message(describe(p, eta_s, None));
}

/// The tracing writer of the CLI: stderr, with the bar (if any) suspended
/// while a line is written.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LogWriter;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = ACTIVE.lock().ok().and_then(|a| a.clone());
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_only_for_a_person_at_a_terminal() {
        assert!(wanted(true, false));
        assert!(!wanted(false, false), "a pipe or the journal");
        assert!(!wanted(true, true), "--json");
        assert!(!wanted(false, true));
    }
}
