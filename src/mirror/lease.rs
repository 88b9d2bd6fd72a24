//! Which process owns what: the owner lease every opener holds, and the
//! push lock.
//!
//! A `running` row in `sync_runs` means "someone is doing this", and the
//! only question worth asking about it is whether that someone is still
//! alive. Timestamps and heartbeats cannot answer it (a paused clock, a
//! slow disk, a reused pid), so liveness is an OS fact instead: each
//! process that opens the mirror holds an exclusive `flock` on its own file
//! in `<mirror>.owners/` for as long as it lives, and anyone can test "is
//! that owner alive" with a non-blocking lock attempt on the file. The
//! kernel drops the lock when the process ends, however it ends (SIGKILL
//! included), and a new process never inherits it.
//!
//! The push lock is the same idea on one well-known file,
//! `<mirror>.push.lock`: held for the whole of a push, so two pushes never
//! run at once on one mirror, whichever processes they are in. Its holder
//! writes its pid, host and run into it so a refusal can name it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("cannot use the lock file {path}: {source}")]
pub struct LeaseError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

fn lease_err(path: &Path) -> impl FnOnce(std::io::Error) -> LeaseError + '_ {
    move |source| LeaseError {
        path: path.to_owned(),
        source,
    }
}

/// What a lock file says about its holder (for people and refusals; the
/// lock itself is the proof of life).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Holder {
    pub pid: u32,
    pub host: String,
    #[serde(default)]
    pub boot_id: String,
    #[serde(default)]
    pub run: Option<i64>,
}

impl Holder {
    fn this_process() -> Holder {
        Holder {
            pid: std::process::id(),
            host: hostname(),
            boot_id: std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            run: None,
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} on {}", self.pid, self.host)?;
        if let Some(run) = self.run {
            write!(f, ", run {run}")?;
        }
        Ok(())
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // within it or truncates.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown-host".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Lock `file` exclusively without waiting: `Ok(false)` if another open
/// file (in this or another process) holds it.
fn try_lock(file: &File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EWOULDBLOCK) => Ok(false),
        _ => Err(e),
    }
}

/// Release the `flock` on `file` now. Closing the file is not enough: a
/// child forked meanwhile (any `Command` spawn in this process) shares the
/// open file description, and so the lock, until its exec closes its copy;
/// an explicit unlock frees it whatever other descriptors remain.
fn unlock(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
}

/// Open (creating, mode 0640 like the mirror) a lock file for writing.
fn open_lock_file(path: &Path, create_new: bool) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = OpenOptions::new();
    o.read(true).write(true).mode(0o640);
    if create_new {
        o.create_new(true);
    } else {
        o.create(true).truncate(false);
    }
    o.open(path)
}

fn write_holder(mut file: &File, holder: &Holder) -> std::io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    let text = serde_json::to_string(holder).map_err(std::io::Error::other)?;
    file.write_all(text.as_bytes())?;
    file.flush()
}

/// An exclusive `flock` on a lock file, held until dropped (the token
/// cache's single-flight lock, `<mirror>.token.lock`).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

impl Drop for FileLock {
    fn drop(&mut self) {
        unlock(&self._file);
    }
}

/// Take an exclusive lock on `path` (created 0640, never removed: removing
/// a lock file lets two processes lock two different files) without
/// waiting: `Ok(None)` if another open file, in any process, holds it.
pub(crate) fn try_lock_path(path: &Path) -> Result<Option<FileLock>, LeaseError> {
    let file = open_lock_file(path, false).map_err(lease_err(path))?;
    Ok(try_lock(&file)
        .map_err(lease_err(path))?
        .then_some(FileLock { _file: file }))
}

/// The directory of owner files beside the mirror at `mirror`.
pub(crate) fn owners_dir(mirror: &Path) -> PathBuf {
    let mut name = mirror.file_name().unwrap_or_default().to_owned();
    name.push(".owners");
    mirror.with_file_name(name)
}

/// Whether the owner of a run is provably gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Liveness {
    Alive,
    /// Gone; what its file said about it, if it still had one.
    Gone(Option<Holder>),
}

/// This process's claim on the mirror, held until dropped (or released).
#[derive(Debug)]
pub struct OwnerLease {
    id: String,
    holder: Holder,
    path: PathBuf,
    file: Mutex<Option<File>>,
}

impl OwnerLease {
    /// Take a new lease on the mirror at `mirror`.
    pub fn take(mirror: &Path) -> Result<OwnerLease, LeaseError> {
        let dir = owners_dir(mirror);
        create_dir(&dir).map_err(lease_err(&dir))?;
        let holder = Holder::this_process();
        let millis = chrono::Utc::now().timestamp_millis();
        let id = format!("{}-{millis}-{:08x}", holder.pid, rand::random::<u32>());
        let path = dir.join(format!("{id}.lock"));
        // Locked and written under a name no sweeper looks at, then renamed:
        // a sweeper that found the file before we locked it would take it
        // for a dead owner's and remove it.
        let tmp = dir.join(format!(".{id}.tmp"));
        let file = open_lock_file(&tmp, true).map_err(lease_err(&tmp))?;
        if !try_lock(&file).map_err(lease_err(&tmp))? {
            return Err(lease_err(&tmp)(std::io::Error::other("locked by another")));
        }
        write_holder(&file, &holder).map_err(lease_err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(lease_err(&path))?;
        Ok(OwnerLease {
            id,
            holder,
            path,
            file: Mutex::new(Some(file)),
        })
    }

    /// The stand-in of a read-only opener (`status` on a read-only mount):
    /// it starts no run, so it claims nothing, and it could not create a
    /// file beside the mirror anyway.
    pub fn reader() -> OwnerLease {
        OwnerLease {
            id: String::new(),
            holder: Holder::this_process(),
            path: PathBuf::new(),
            file: Mutex::new(None),
        }
    }

    /// The owner id recorded in `sync_runs.owner`.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn holder(&self) -> &Holder {
        &self.holder
    }

    /// Give the lease up now, as if this process had ended: its runs become
    /// those of a dead owner (tests simulate a killed process with this).
    pub fn release(&self) {
        if let Some(file) = self.file.lock().unwrap_or_else(|e| e.into_inner()).take() {
            // Removed before the lock goes: a prober then finds no file
            // (gone) or a file it can lock (gone), never a live-looking one.
            let _ = std::fs::remove_file(&self.path);
            drop(file);
        }
    }
}

impl Drop for OwnerLease {
    fn drop(&mut self) {
        self.release();
    }
}

fn create_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o750).create(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// Is the owner `id` of the mirror at `mirror` alive? A dead owner's file
/// is removed on the way. Anything that does not prove death (an unreadable
/// file, an odd error) counts as alive: a live run must never be failed.
pub(crate) fn owner_liveness(mirror: &Path, id: &str) -> Liveness {
    let path = owners_dir(mirror).join(format!("{id}.lock"));
    let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Liveness::Gone(None),
        Err(_) => return Liveness::Alive,
    };
    match try_lock(&file) {
        Ok(true) => {
            let mut text = String::new();
            let holder = file
                .read_to_string(&mut text)
                .ok()
                .and_then(|_| serde_json::from_str(&text).ok());
            // Removed while we hold its lock, so nobody mistakes it later.
            let _ = std::fs::remove_file(&path);
            Liveness::Gone(holder)
        }
        _ => Liveness::Alive,
    }
}

/// Remove the files of every dead owner of the mirror at `mirror`.
pub(crate) fn sweep_dead_owners(mirror: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(owners_dir(mirror)) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".lock").map(str::to_owned)
        })
        .filter(|id| owner_liveness(mirror, id) != Liveness::Alive)
        .count()
}

/// The push lock of one mirror, held until dropped.
#[derive(Debug)]
pub(crate) struct PushLock {
    file: File,
    holder: Holder,
}

/// Why the push lock was not taken.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PushLockError {
    /// Another push holds it; what its file says about it.
    #[error("held by {0}")]
    Held(Holder),
    #[error(transparent)]
    Io(#[from] LeaseError),
}

impl PushLock {
    /// `<mirror>.push.lock`.
    pub fn path(mirror: &Path) -> PathBuf {
        let mut name = mirror.file_name().unwrap_or_default().to_owned();
        name.push(".push.lock");
        mirror.with_file_name(name)
    }

    /// Take the lock without waiting. The file is never removed (removing
    /// a lock file lets two processes lock two different files).
    pub(crate) fn try_acquire(mirror: &Path) -> Result<PushLock, PushLockError> {
        let path = Self::path(mirror);
        let mut file = open_lock_file(&path, false).map_err(lease_err(&path))?;
        if !try_lock(&file).map_err(lease_err(&path))? {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let holder = serde_json::from_str(&text).unwrap_or_else(|_| Holder {
                host: "an unknown host".into(),
                ..Holder::default()
            });
            return Err(PushLockError::Held(holder));
        }
        let holder = Holder::this_process();
        write_holder(&file, &holder).map_err(lease_err(&path))?;
        Ok(PushLock { file, holder })
    }

    /// Record the run this push is (for a refusal's message).
    pub(crate) fn set_run(&mut self, run: i64) {
        self.holder.run = Some(run);
        if let Err(e) = write_holder(&self.file, &self.holder) {
            tracing::warn!(error = %e, "could not record the push run in its lock file");
        }
    }
}

impl Drop for PushLock {
    fn drop(&mut self) {
        unlock(&self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lease_is_alive_and_a_released_one_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let mirror = dir.path().join("m.db");
        let lease = OwnerLease::take(&mirror).unwrap();
        // Another open file description: what another process would see.
        assert_eq!(owner_liveness(&mirror, lease.id()), Liveness::Alive);
        assert_eq!(sweep_dead_owners(&mirror), 0);
        lease.release();
        assert_eq!(owner_liveness(&mirror, lease.id()), Liveness::Gone(None));
        assert_eq!(
            owner_liveness(&mirror, "no-such-owner"),
            Liveness::Gone(None)
        );
    }

    #[test]
    fn an_unlocked_owner_file_is_gone_and_swept() {
        let dir = tempfile::tempdir().unwrap();
        let mirror = dir.path().join("m.db");
        let lease = OwnerLease::take(&mirror).unwrap();
        let path = owners_dir(&mirror).join(format!("{}.lock", lease.id()));
        let stale = owners_dir(&mirror).join("1-2-dead.lock");
        std::fs::copy(&path, &stale).unwrap();
        assert_eq!(sweep_dead_owners(&mirror), 1);
        assert!(!stale.exists() && path.exists());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
    }

    #[test]
    fn the_push_lock_is_exclusive_and_names_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let mirror = dir.path().join("m.db");
        let mut first = PushLock::try_acquire(&mirror).unwrap();
        first.set_run(7);
        match PushLock::try_acquire(&mirror) {
            Err(PushLockError::Held(h)) => {
                assert_eq!((h.pid, h.run), (std::process::id(), Some(7)));
                assert!(h.to_string().ends_with(", run 7"), "{h}");
            }
            other => panic!("{other:?}"),
        }
        drop(first);
        assert!(PushLock::try_acquire(&mirror).is_ok());
    }

    /// A child spawned while a push holds the lock (fork, then exec) has a
    /// copy of the lock's file descriptor until its exec closes it
    /// (O_CLOEXEC): the same open file description, so the same `flock`.
    /// Releasing the lock must free it at once all the same, or a command
    /// right after the push (`approve`) is refused as busy by our own pid.
    #[test]
    fn a_released_lock_is_free_while_a_forked_child_still_has_its_fd() {
        let dir = tempfile::tempdir().unwrap();
        let mirror = dir.path().join("m.db");
        let push = PushLock::try_acquire(&mirror).unwrap();
        // What fork gives the child: a duplicate of the descriptor.
        let child_copy = push.file.try_clone().unwrap();
        drop(push);
        let again = PushLock::try_acquire(&mirror);
        assert!(again.is_ok(), "push lock still held: {again:?}");

        let token = dir.path().join("m.db.token.lock");
        let lock = try_lock_path(&token).unwrap().unwrap();
        let token_copy = lock._file.try_clone().unwrap();
        drop(lock);
        assert!(
            try_lock_path(&token).unwrap().is_some(),
            "token lock still held"
        );
        drop((child_copy, token_copy));
    }
}
