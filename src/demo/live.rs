//! The demo's progress display: a live line on a terminal, plain lines otherwise.

use std::io::{IsTerminal, Write as _};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::report::secs;
use super::Output;

type Detail = Box<dyn Fn() -> String + Send>;

struct LiveState {
    index: usize,
    label: String,
    started: Instant,
    detail: Option<Detail>,
}

/// The progress display: a line redrawn in place on a terminal (a ticker
/// task polls the step's detail), one line per finished step otherwise.
pub(super) struct Live {
    tty: bool,
    quiet: bool,
    total: usize,
    state: Arc<Mutex<LiveState>>,
    ticker: Option<tokio::task::JoinHandle<()>>,
    pub(super) steps: Vec<(String, Duration)>,
}

impl Live {
    pub(super) fn new(output: Output, total: usize) -> Self {
        let tty = output == Output::Auto && std::io::stdout().is_terminal();
        let state = Arc::new(Mutex::new(LiveState {
            index: 0,
            label: String::new(),
            started: Instant::now(),
            detail: None,
        }));
        let ticker = tty.then(|| {
            let state = state.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(120));
                loop {
                    tick.tick().await;
                    let line = {
                        let st = state.lock().unwrap_or_else(|p| p.into_inner());
                        let Some(detail) = st.detail.as_ref().map(|d| d()) else {
                            continue;
                        };
                        format!(
                            "[{}/{total}] {}{}{} … {:.1} s",
                            st.index,
                            st.label,
                            if detail.is_empty() { "" } else { ": " },
                            detail,
                            st.started.elapsed().as_secs_f64()
                        )
                    };
                    let mut out = std::io::stdout().lock();
                    let _ = write!(out, "\r\x1b[K{line}");
                    let _ = out.flush();
                }
            })
        });
        Self {
            tty,
            quiet: output == Output::Quiet,
            total,
            state,
            ticker,
            steps: Vec::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LiveState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn step(&mut self, label: &str, detail: impl Fn() -> String + Send + 'static) {
        let mut st = self.lock();
        st.index += 1;
        st.label = label.to_owned();
        st.started = Instant::now();
        st.detail = Some(Box::new(detail));
    }

    pub(super) fn done(&mut self, summary: String) {
        let (index, label, took) = {
            let mut st = self.lock();
            st.detail = None;
            (st.index, st.label.clone(), st.started.elapsed())
        };
        self.steps.push((label, took));
        if self.quiet {
            return;
        }
        let mut out = std::io::stdout().lock();
        if self.tty {
            let _ = write!(out, "\r\x1b[K");
        }
        let _ = writeln!(out, "[{index}/{}] {summary} ({})", self.total, secs(took));
        let _ = out.flush();
    }

    pub(super) fn finish(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        if self.tty {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r\x1b[K");
            let _ = out.flush();
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
    }
}
