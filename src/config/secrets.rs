//! Secret files (`client_secret_file`, `refresh_token_file`).
//!
//! The rule is ssh's rule for private keys: a secret file that is **owned by
//! the user running cliq-sync** and grants **any access to group or others**
//! (`mode & 0o077 != 0`) is refused; the fix is `chmod 600 FILE`. Files owned
//! by someone else are accepted as they are, because that is how the two
//! supported ways of handing over secrets look:
//!
//! * systemd `LoadCredential=`: 0400, owned by the service user: passes;
//! * a Kubernetes Secret volume with `fsGroup`: 0440 `root:<fsGroup>`, read
//!   through the group and impossible to chmod from inside the pod: owned by
//!   root, so not judged.
//!
//! A file the user owns is one the user could have made private, so leaving
//! it open is a mistake worth stopping for (an ops group, a backup agent or a
//! log shipper would otherwise read the refresh token).
//!
//! No error here ever contains the file's contents.

use std::io::Read;
use std::path::Path;

use secrecy::SecretString;

use super::ConfigError;

/// Read a secret file: it must exist, pass the mode rule and not be blank.
/// Surrounding whitespace (the trailing newline of `echo … >file`) is trimmed.
pub fn read(key: &'static str, path: &Path) -> Result<SecretString, ConfigError> {
    let cannot = |error| ConfigError::SecretFile {
        key,
        path: path.to_owned(),
        error,
    };
    let mut file = std::fs::File::open(path).map_err(cannot)?;
    // Judge the file we opened, not whatever the path points at a moment later.
    let meta = file.metadata().map_err(cannot)?;
    // What it is comes first: a directory's 0755 is no secret's mode.
    check_kind(key, path, &meta)?;
    check_mode(key, path, &meta)?;
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(cannot)?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(ConfigError::SecretFileBad {
            key,
            path: path.to_owned(),
            why: "is empty",
        });
    }
    Ok(SecretString::from(secret.to_owned()))
}

/// The mode rule alone, for a file that can be looked at (used at load time,
/// so every command, `check-config` included, refuses an open secret file).
/// A file that cannot be looked at is left to [`read`], which only the
/// commands that need the secret call.
pub fn check_mode_if_present(key: &'static str, path: &Path) -> Result<(), ConfigError> {
    match std::fs::metadata(path) {
        Ok(meta) => {
            check_kind(key, path, &meta)?;
            check_mode(key, path, &meta)
        }
        Err(_) => Ok(()),
    }
}

/// A secret file must be a regular file (a symlink to one is fine).
fn check_kind(key: &'static str, path: &Path, meta: &std::fs::Metadata) -> Result<(), ConfigError> {
    let why = if meta.is_dir() {
        "is a directory, not a file; point the key at the file that holds the secret \
         (e.g. a file inside that directory)"
    } else if !meta.is_file() {
        "is not a regular file; point the key at the file that holds the secret"
    } else {
        return Ok(());
    };
    Err(ConfigError::SecretFileBad {
        key,
        path: path.to_owned(),
        why,
    })
}

#[cfg(unix)]
fn check_mode(key: &'static str, path: &Path, meta: &std::fs::Metadata) -> Result<(), ConfigError> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let mode = meta.mode() & 0o7777;
    if meta.uid() == me && mode & 0o077 != 0 {
        return Err(ConfigError::SecretFileMode {
            key,
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_: &'static str, _: &Path, _: &std::fs::Metadata) -> Result<(), ConfigError> {
    Ok(())
}
