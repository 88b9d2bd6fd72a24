//! The adversarial table: many bad inputs, each run through the real
//! binary against a simulator, checking three things per row: the exit
//! code, that the message names the file, line and field, and that no
//! request reached Cliq.
//!
//! * [`hr`]: bad HR sources (partial, malformed, unsafe values, lossy numbers).
//! * [`config`]: bad configs.

mod config;
mod hr;

use std::path::{Path, PathBuf};

use cliq_sync::clock::Clock;
use cliq_sync::sim::{SimConfig, Simulator};
use tokio_util::sync::CancellationToken;

/// A simulator on a loopback port (real time: nothing here waits on a
/// quota) and a temp directory for configs, HR files and the mirror.
pub(super) struct Peer {
    pub sim: Simulator,
    pub sim_cfg: SimConfig,
    pub addr: std::net::SocketAddr,
    pub dir: tempfile::TempDir,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Peer {
    pub async fn start() -> Peer {
        let sim_cfg = SimConfig {
            users: 20,
            ..SimConfig::default()
        };
        let sim = Simulator::new(sim_cfg.clone(), Clock::system());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let server = tokio::spawn(sim.clone().serve(listener, stop.clone().cancelled_owned()));
        Peer {
            sim,
            sim_cfg,
            addr,
            dir: tempfile::tempdir().unwrap(),
            stop,
            server,
        }
    }

    /// A config for this peer (credentials, mirror in the temp dir) plus `extra`.
    pub fn config(&self, name: &str, extra: &str) -> PathBuf {
        let c = &self.sim_cfg;
        let path = self.dir.path().join(name);
        let text = format!(
            "[cliq]\nbase_url = \"http://{a}\"\naccounts_url = \"http://{a}\"\n\
             client_id = \"{}\"\nclient_secret = \"{}\"\nrefresh_token = \"{}\"\n\n\
             [mirror]\npath = \"{}\"\n\n{extra}\n",
            c.client_id,
            c.client_secret,
            c.refresh_token,
            self.dir.path().join("mirror.db").display(),
            a = self.addr,
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Every request the simulator received, of any kind (OAuth included).
    pub fn requests(&self) -> usize {
        let counted: u64 = self.sim.counters().requests.values().sum();
        self.sim.requests().len().max(counted as usize)
    }

    pub async fn shut(self) {
        self.stop.cancel();
        self.server.await.unwrap().unwrap();
    }
}

/// What one run of the binary did.
pub(super) struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Run `cliq-sync --config CONFIG ARGS…`.
pub(super) async fn run(config: &Path, args: &[&str]) -> Outcome {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_cliq-sync"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("CLIQ_SYNC_CONFIG")
        .output()
        .await
        .unwrap();
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
