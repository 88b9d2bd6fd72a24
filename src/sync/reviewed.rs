//! Reviewable plans, as terraform plan/apply: `plan --out FILE` writes the
//! plan with the mirror values each part was made against; `push --plan
//! FILE` pushes exactly that file (nothing recomputed from HR), refusing
//! the parts whose mirror values changed since (see `push::given`).
//!
//! The file is one JSON document: `schema_version`, a `format` marker,
//! `made_at`, the `mirror` it was made for, the `managed_fields`, and the
//! `updates` (each with its `mirror_values`) and `adds`. It is written
//! atomically (temp file + rename) with mode 0600: it holds people's data.
//! A file that is truncated, malformed, of another `schema_version` or made
//! for another mirror is refused whole: nothing acts on partial input.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::hr::Attr;
use crate::json::SCHEMA_VERSION;
use crate::mirror::pushes::MirrorUser;
use crate::mirror::{Store, StoreError};
use crate::sync::plan::{FieldChange, Plan, PlannedAdd, PlannedUpdate};
use crate::sync::push::{Given, GivenUpdate};

/// The `format` marker of a plan file.
pub(crate) const FORMAT: &str = "cliq-sync reviewed plan";

#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    #[error("cannot read the plan file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("cannot write the plan file {0}: {1}")]
    Write(PathBuf, std::io::Error),
    #[error("{0} is not a complete plan file ({1}): was it truncated? Nothing was sent; make it again with `cliq-sync plan --out`")]
    Incomplete(PathBuf, serde_json::Error),
    #[error("{0} has schema_version {1}; this cliq-sync reads plan files of schema_version {SCHEMA_VERSION}. Nothing was sent; make it again with `cliq-sync plan --out`")]
    Version(PathBuf, String),
    #[error(
        "{0} is not a cliq-sync plan file (its format is {1:?}, not {FORMAT:?}); nothing was sent"
    )]
    Format(PathBuf, String),
    #[error("{0} is malformed: {1}; nothing was sent")]
    Malformed(PathBuf, String),
    #[error("{0} was made for the mirror {1}, not this one ({2}); nothing was sent")]
    OtherMirror(PathBuf, String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Serialize, Deserialize)]
struct PlanFile {
    format: String,
    made_at: String,
    mirror: String,
    source: String,
    managed_fields: Vec<String>,
    updates: Vec<FileUpdate>,
    adds: Vec<FileAdd>,
}

#[derive(Serialize, Deserialize)]
struct FileUpdate {
    user_id: String,
    email: String,
    changes: Vec<FileChange>,
    desired_hash: String,
    /// Managed field → the mirror's value when the plan was made.
    mirror_values: BTreeMap<String, Option<String>>,
}

#[derive(Serialize, Deserialize)]
struct FileChange {
    field: String,
    current: Option<String>,
    desired: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    desired_name: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct FileAdd {
    email: String,
    /// Cliq key → value.
    fields: BTreeMap<String, String>,
    desired_hash: String,
}

/// The mirror's path as a plan file names it (absolute, symlinks resolved).
fn mirror_name(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// Write `plan` to `path` with the mirror values it was made against.
pub async fn write(store: &Store, plan: &Plan, path: &Path) -> Result<(), PlanFileError> {
    let ids: Vec<String> = plan.updates.iter().map(|u| u.user_id.clone()).collect();
    let snapshot = store.plan_users(&ids, &[]).await?;
    let by_id: BTreeMap<&str, _> = snapshot.iter().map(|u| (u.id.as_str(), u)).collect();
    let file = PlanFile {
        format: FORMAT.into(),
        made_at: crate::clock::to_db(store.clock().now()),
        mirror: mirror_name(store.path()),
        source: plan.source.clone(),
        managed_fields: plan
            .managed_fields
            .iter()
            .map(|f| (*f).to_owned())
            .collect(),
        updates: plan
            .updates
            .iter()
            .map(|u| {
                file_update(
                    u,
                    &plan.managed_fields,
                    by_id.get(u.user_id.as_str()).copied(),
                )
            })
            .collect(),
        adds: plan.adds.iter().map(file_add).collect(),
    };
    let text =
        crate::json::document(&file).map_err(|e| PlanFileError::Write(path.into(), e.into()))?;
    write_private(path, text.as_bytes()).map_err(|e| PlanFileError::Write(path.into(), e))
}

/// One update as the file holds it, with every managed field's mirror
/// value now (`mirror`: the user's row, if the mirror still has it).
fn file_update(u: &PlannedUpdate, managed: &[&str], mirror: Option<&MirrorUser>) -> FileUpdate {
    FileUpdate {
        user_id: u.user_id.clone(),
        email: u.email.clone(),
        changes: u
            .changes
            .iter()
            .map(|c| FileChange {
                field: c.field.to_owned(),
                current: c.current.clone(),
                desired: c.desired.clone(),
                desired_name: c.desired_name.clone(),
            })
            .collect(),
        desired_hash: u.desired_hash.clone(),
        mirror_values: managed
            .iter()
            .filter_map(|f| Attr::from_name(f))
            .map(|a| {
                let now = mirror.and_then(|m| m.get(a.mirror_column()));
                (a.name().to_owned(), now.map(str::to_owned))
            })
            .collect(),
    }
}

fn file_add(a: &PlannedAdd) -> FileAdd {
    FileAdd {
        email: a.email.clone(),
        fields: a
            .fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        desired_hash: a.desired_hash.clone(),
    }
}

/// Temp file (0600) in the same directory, then rename: a reader never
/// sees half a plan.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("plan");
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Read the plan file at `path`, made for the mirror at `mirror`.
pub fn read(path: &Path, mirror: &Path) -> Result<Given, PlanFileError> {
    let p = || path.to_path_buf();
    let text = std::fs::read_to_string(path).map_err(|e| PlanFileError::Read(p(), e))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| PlanFileError::Incomplete(p(), e))?;
    let version = &v["schema_version"];
    if version.as_u64() != Some(u64::from(SCHEMA_VERSION)) {
        return Err(PlanFileError::Version(p(), version.to_string()));
    }
    let format = v["format"].as_str().unwrap_or_default();
    if format != FORMAT {
        return Err(PlanFileError::Format(p(), format.to_owned()));
    }
    let file: PlanFile =
        serde_json::from_value(v).map_err(|e| PlanFileError::Malformed(p(), e.to_string()))?;
    let here = mirror_name(mirror);
    if file.mirror != here {
        return Err(PlanFileError::OtherMirror(p(), file.mirror, here));
    }
    given(file).map_err(|m| PlanFileError::Malformed(p(), m))
}

fn attr(name: &str) -> Result<Attr, String> {
    Attr::from_name(name).ok_or_else(|| format!("unknown field {name:?}"))
}

/// The file's parts as a [`Given`]: each update expects every managed
/// field's mirror value of the file, the whole part refused otherwise.
fn given(file: PlanFile) -> Result<Given, String> {
    let managed_fields = file
        .managed_fields
        .iter()
        .map(|f| attr(f).map(Attr::name))
        .collect::<Result<_, _>>()?;
    let updates = file
        .updates
        .into_iter()
        .map(given_update)
        .collect::<Result<_, _>>()?;
    let adds = file
        .adds
        .into_iter()
        .map(given_add)
        .collect::<Result<_, _>>()?;
    Ok(Given {
        source: format!("plan file made {} from {}", file.made_at, file.source),
        managed_fields,
        updates,
        adds,
        undoes_run: None,
        refused: Vec::new(),
    })
}

/// One update of the file, expecting its mirror values.
fn given_update(u: FileUpdate) -> Result<GivenUpdate, String> {
    let mut changes = Vec::with_capacity(u.changes.len());
    for c in u.changes {
        let a = attr(&c.field)?;
        changes.push(FieldChange {
            field: a.name(),
            cliq_key: a.cliq_key(),
            current: c.current,
            desired: c.desired,
            current_name: None,
            desired_name: c.desired_name,
            conflict: None,
        });
    }
    let expect = u
        .mirror_values
        .into_iter()
        .map(|(f, v)| attr(&f).map(|a| (a.name(), v)))
        .collect::<Result<_, _>>()?;
    Ok(GivenUpdate {
        update: PlannedUpdate {
            user_id: u.user_id,
            email: u.email,
            changes,
            desired_hash: u.desired_hash,
        },
        expect,
        per_field: false,
    })
}

/// One add of the file; a Cliq key this version does not know refuses it.
fn given_add(a: FileAdd) -> Result<PlannedAdd, String> {
    let mut fields = BTreeMap::new();
    for (k, v) in a.fields {
        let key = Attr::ALL
            .into_iter()
            .find(|x| x.cliq_key() == k)
            .ok_or_else(|| format!("unknown Cliq key {k:?} in the add of {}", a.email))?;
        fields.insert(key.cliq_key(), v);
    }
    Ok(PlannedAdd {
        email: a.email,
        fields,
        desired_hash: a.desired_hash,
    })
}
