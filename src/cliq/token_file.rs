//! The access-token cache on disk: `<mirror>.token`, shared by every process
//! on the mirror.
//!
//! Zoho mints about ten access tokens per refresh token per ten minutes, and
//! every `sync`, `plan` or `push` is a process of its own: without a shared
//! cache the eleventh command in ten minutes waits for the budget. So the
//! token lives beside the mirror, in a file of its own because it is a
//! credential: mode 0600, while the mirror is 0640 for an ops group.
//!
//! * The file holds the access token, its mint and expiry times (absolute
//!   UTC from the project's [`Clock`], so they mean the same to every
//!   process) and a fingerprint of (client id, accounts URL, a hash of the
//!   refresh token): a changed credential never adopts a stale token. It
//!   never holds the refresh token or the client secret.
//! * It is written atomically: a new 0600 file beside it, then a rename.
//! * Minting is single-flight across processes: the minter holds an
//!   exclusive `flock` on `<mirror>.token.lock` and re-reads the cache once
//!   it has the lock (whoever held it before may just have minted).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::{from_db, to_db, Clock};
use crate::mirror::lease::{try_lock_path, FileLock, LeaseError};

/// A token read from (or written to) the cache.
pub struct CachedToken {
    pub token: SecretString,
    pub minted_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What is on disk. Not `Debug`: it holds the access token.
#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    fingerprint: String,
    access_token: String,
    minted_at: String,
    expires_at: String,
}

/// The cache beside one mirror.
#[derive(Clone)]
pub struct TokenFile {
    path: PathBuf,
    lock_path: PathBuf,
    clock: Clock,
}

impl std::fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn sibling(mirror: &Path, suffix: &str) -> PathBuf {
    let mut name = mirror.file_name().unwrap_or_default().to_owned();
    name.push(suffix);
    mirror.with_file_name(name)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Which credential a token belongs to, without revealing it.
pub fn fingerprint(client_id: &str, accounts_base: &str, refresh_token: &SecretString) -> String {
    let refresh = Sha256::digest(refresh_token.expose_secret().as_bytes());
    let mut h = Sha256::new();
    for part in [
        client_id.as_bytes(),
        accounts_base.trim_end_matches('/').as_bytes(),
        hex(&refresh).as_bytes(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    hex(&h.finalize())
}

impl TokenFile {
    /// `<mirror>.token` (and its lock `<mirror>.token.lock`).
    pub fn beside(mirror: &Path, clock: Clock) -> TokenFile {
        TokenFile {
            path: sibling(mirror, ".token"),
            lock_path: sibling(mirror, ".token.lock"),
            clock,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The cached token for `fingerprint`, if there is one that has not
    /// expired. Anything unreadable counts as no token (we mint instead).
    pub fn read(&self, fingerprint: &str) -> Option<CachedToken> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot read the access-token cache; minting a token instead");
                return None;
            }
        };
        let d: OnDisk = serde_json::from_str(&text).ok()?;
        if d.version != 1 || d.fingerprint != fingerprint || d.access_token.is_empty() {
            return None;
        }
        let t = CachedToken {
            token: SecretString::from(d.access_token),
            minted_at: from_db(&d.minted_at)?,
            expires_at: from_db(&d.expires_at)?,
        };
        (self.clock.now() < t.expires_at).then_some(t)
    }

    /// Replace the cache atomically (a new 0600 file, then a rename).
    pub fn write(&self, fingerprint: &str, t: &CachedToken) -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let d = OnDisk {
            version: 1,
            fingerprint: fingerprint.to_owned(),
            access_token: t.token.expose_secret().to_owned(),
            minted_at: to_db(t.minted_at),
            expires_at: to_db(t.expires_at),
        };
        let text = serde_json::to_string(&d).map_err(std::io::Error::other)?;
        let tmp = sibling(
            &self.path,
            &format!(".{}-{:08x}.tmp", std::process::id(), rand::random::<u32>()),
        );
        let result = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Take the single-flight lock, waiting (on tokio's clock, polling the
    /// non-blocking lock: a blocking `flock` on a thread would stall the
    /// paused test clock) at most `bound`. `Ok(None)`: still held after
    /// `bound` (its holder is stuck; we mint without it rather than hang).
    pub async fn lock(&self, bound: Duration) -> Result<Option<FileLock>, LeaseError> {
        let start = tokio::time::Instant::now();
        let mut logged = false;
        let mut pause = Duration::from_millis(10);
        loop {
            if let Some(l) = try_lock_path(&self.lock_path)? {
                if logged {
                    tracing::info!(
                        waited_ms = start.elapsed().as_millis() as u64,
                        "the other process finished minting"
                    );
                }
                return Ok(Some(l));
            }
            let waited = start.elapsed();
            if waited >= bound {
                tracing::warn!(
                    waited_ms = waited.as_millis() as u64,
                    lock = %self.lock_path.display(),
                    "another process has been minting the access token for too long; minting without waiting for it"
                );
                return Ok(None);
            }
            if !logged && waited >= Duration::from_secs(1) {
                logged = true;
                tracing::info!(
                    lock = %self.lock_path.display(),
                    "waiting for another process on this mirror to mint the access token"
                );
            }
            tokio::time::sleep(pause.min(bound - waited)).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test(start_paused = true)]
    async fn round_trip_is_private_and_bound_to_the_credential() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::anchored(from_db("2026-03-01T08:00:00.000Z").unwrap());
        let f = TokenFile::beside(&dir.path().join("m.db"), clock.clone());
        let refresh = SecretString::from("1000.refresh-secret");
        let fp = fingerprint("1000.ID", "https://accounts.zoho.eu/", &refresh);
        assert_eq!(
            fp,
            fingerprint("1000.ID", "https://accounts.zoho.eu", &refresh)
        );
        let t = CachedToken {
            token: SecretString::from("1000.access"),
            minted_at: clock.now(),
            expires_at: clock.now() + chrono::Duration::hours(1),
        };
        f.write(&fp, &t).unwrap();
        assert_eq!(f.path(), dir.path().join("m.db.token"));
        let mode = std::fs::metadata(f.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(f.path()).unwrap();
        assert!(!text.contains("refresh-secret"), "{text}");
        assert_eq!(f.read(&fp).unwrap().token.expose_secret(), "1000.access");
        // Another credential never adopts it.
        let other = fingerprint("1000.ID", "https://accounts.zoho.eu", &"x".into());
        assert!(f.read(&other).is_none());
        // An expired one is no token.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(f.read(&fp).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_lock_is_single_flight_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let f = TokenFile::beside(&dir.path().join("m.db"), Clock::system());
        let held = f.lock(Duration::from_secs(5)).await.unwrap().unwrap();
        let start = tokio::time::Instant::now();
        assert!(f.lock(Duration::from_secs(5)).await.unwrap().is_none());
        assert!(start.elapsed() >= Duration::from_secs(5));
        drop(held);
        assert!(f.lock(Duration::from_secs(5)).await.unwrap().is_some());
    }
}
