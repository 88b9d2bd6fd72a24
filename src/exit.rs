//! Exit codes that depend on how a command ended, and the signals that stop
//! one-shot commands.
//!
//! A `sync` or `push` stopped by a signal ends cleanly (the run is recorded
//! `stopped`), but a script or a supervisor must still tell it from a run
//! that finished: it exits 128 + the signal number, as a shell reports a
//! process killed by it (SIGINT 130, SIGTERM 143). The daemon `run` is
//! different: SIGTERM is how it is asked to stop, so it exits 0.

use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

use crate::mirror::StoreError;

/// A failure with the exit code it deserves.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    /// Exit 1, except for a mirror made by a newer cliq-sync: that is the
    /// installation's problem, not the run's, and exits 2 from every command.
    pub fn runtime(error: impl Into<anyhow::Error>) -> Self {
        let error = error.into();
        let newer = error.chain().any(|e| {
            matches!(
                e.downcast_ref::<StoreError>(),
                Some(StoreError::NewerMirror { .. })
            )
        });
        Self {
            code: if newer { 2 } else { 1 },
            error,
        }
    }
    pub fn config(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: 2,
            error: error.into(),
        }
    }
}

/// An error and its causes, each said once: a thiserror message that
/// includes its source (`cannot open X: E`) and the source itself (`E`)
/// would otherwise print as "cannot open X: E: E".
pub(crate) fn error_chain(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// The signal that stopped a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopSignal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (systemd, kill, Kubernetes).
    Terminate,
}

impl StopSignal {
    /// 128 + the signal number, the shell's convention.
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            StopSignal::Interrupt => 130,
            StopSignal::Terminate => 143,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
        }
    }
}

/// Resolves with the first SIGINT or SIGTERM.
pub(crate) async fn stop_signal() -> StopSignal {
    let ctrl_c = async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => StopSignal::Interrupt,
            // No handler could be installed: never resolve from here.
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
                StopSignal::Terminate
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<StopSignal>();
    tokio::select! {
        s = ctrl_c => s,
        s = term => s,
    }
}

/// Watches for SIGINT/SIGTERM on behalf of a one-shot command: the first
/// one cancels `cancel` and is remembered, so the edge can map it to the
/// exit code. Dropping the watch stops watching.
pub(crate) struct SignalWatch {
    caught: Arc<OnceLock<StopSignal>>,
    task: tokio::task::JoinHandle<()>,
}

impl SignalWatch {
    /// Start watching; `say` is told (e.g. to log what happens next) when
    /// a signal arrives, before `cancel` is cancelled.
    pub fn spawn(cancel: CancellationToken, say: impl FnOnce(StopSignal) + Send + 'static) -> Self {
        let caught = Arc::new(OnceLock::new());
        let task = {
            let caught = caught.clone();
            tokio::spawn(async move {
                let signal = stop_signal().await;
                let _ = caught.set(signal);
                say(signal);
                cancel.cancel();
            })
        };
        Self { caught, task }
    }

    /// The signal that stopped the command, if one did.
    pub fn caught(&self) -> Option<StopSignal> {
        self.caught.get().copied()
    }
}

impl Drop for SignalWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The result of a `what` ("pull", "push") recorded `stopped`: exit 130 or
/// 143 after the signal that stopped it. Only a signal cancels these
/// commands, so a stop without one is a runtime failure (exit 1).
pub(crate) fn stopped(what: &str, signal: Option<StopSignal>) -> Result<(), Failure> {
    let error = match signal {
        Some(s) => anyhow::anyhow!(
            "the {what} was stopped by {} (recorded as `stopped`; the next {what} carries on)",
            s.name()
        ),
        None => anyhow::anyhow!("the {what} was stopped before it finished"),
    };
    Err(Failure {
        code: signal.map_or(1, StopSignal::exit_code),
        error,
    })
}

/// The sentence for a push that sent nothing on purpose (`disabled`,
/// `dry_run`), or `None` for a push that ran.
pub(crate) fn nothing_sent(status: &str) -> Option<&'static str> {
    match status {
        "disabled" => Some(
            "push is disabled ([push] enabled = false): this was a plan only, nothing was \
             sent to Cliq. To push once: CLIQ_SYNC__PUSH__ENABLED=true cliq-sync push \
             (to push on the daemon's schedule, set [push] enabled = true)",
        ),
        "dry_run" => Some("dry run: nothing was sent to Cliq."),
        _ => None,
    }
}

/// A push that ran: ok, stopped by a signal (130/143), or failed (1).
pub(crate) fn push_result(
    r: &crate::sync::push::PushReport,
    signal: Option<StopSignal>,
) -> Result<(), Failure> {
    if r.status == "stopped" {
        return stopped("push", signal);
    }
    if r.ok() {
        return Ok(());
    }
    Err(Failure::runtime(anyhow::anyhow!(
        "the push {}: {}",
        r.status,
        r.error
            .as_deref()
            .unwrap_or("the rest is left for the next push")
    )))
}

/// Print a `status --check` verdict (text or JSON); unhealthy exits 1.
pub(crate) fn health(check: &crate::status::HealthCheck, json: bool) -> Result<(), Failure> {
    if json {
        println!(
            "{}",
            crate::json::document(check).map_err(Failure::runtime)?
        );
    } else {
        print!("{}", check.to_text());
    }
    if check.healthy {
        return Ok(());
    }
    Err(Failure {
        code: 1,
        error: anyhow::anyhow!(
            "status --check: unhealthy ({} reason(s), printed above)",
            check.reasons.len()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::StopSignal;

    #[test]
    fn signals_map_to_128_plus_their_number() {
        assert_eq!(StopSignal::Interrupt.exit_code() as i32, 128 + libc::SIGINT);
        assert_eq!(
            StopSignal::Terminate.exit_code() as i32,
            128 + libc::SIGTERM
        );
    }
}
