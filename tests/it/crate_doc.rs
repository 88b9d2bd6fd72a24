//! The crate doc maps every module: each module of `src/` (top-level and
//! nested, test modules left out) is named in `src/lib.rs`'s `//!` doc as
//! `` `path` `` or ``[`path`]`` (e.g. `mirror::held`), and README's
//! "Development" layout names every top-level module's file.

use std::path::Path;

use crate::layers::{module_path, rust_files};

/// Every non-test module path under `src/`: `src/cliq/models/user/value.rs`
/// → `cliq::models::user::value`; `mod.rs` names its directory.
fn module_paths(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut out: Vec<String> = files
        .iter()
        .filter_map(|f| {
            // `lib.rs` and `main.rs` are the crate roots, not modules.
            let parts = module_path(f.strip_prefix(src).unwrap());
            let last = parts.last()?;
            let test = last == "tests" || last.ends_with("_tests");
            (!test).then(|| parts.join("::"))
        })
        .collect();
    out.sort();
    out
}

fn crate_doc(src: &Path) -> String {
    std::fs::read_to_string(src.join("lib.rs"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_crate_doc_names_every_module() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let doc = crate_doc(&src);
    let missing: Vec<String> = module_paths(&src)
        .into_iter()
        .filter(|m| !doc.contains(&format!("`{m}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "{} module(s) not named in the crate doc (src/lib.rs): {missing:?}",
        missing.len()
    );
}

#[test]
fn the_readme_layout_names_every_top_level_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let dev = readme
        .split("## Development")
        .nth(1)
        .expect("README has a Development section");
    let dev = dev.split("\n## ").next().unwrap();
    let missing: Vec<String> = module_paths(&root.join("src"))
        .into_iter()
        .filter(|m| !m.contains("::"))
        .filter(|m| {
            let file = format!("src/{m}.rs");
            let dir = format!("src/{m}/");
            !dev.contains(&file) && !dev.contains(&dir)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "top-level module(s) missing from README's Development layout: {missing:?}"
    );
}
