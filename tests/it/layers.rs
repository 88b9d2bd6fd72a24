//! The module graph guard (issue 10 point 4): no import cycles, and no lower
//! layer reaching up. It reads `src/**/*.rs` and builds the graph of
//! `crate::…` and `super::…` paths between modules, at the granularity of
//! top-level modules and of the files inside `cliq/`, `mirror/` and `sync/`
//! (the layers' own building blocks). Test code (`tests.rs`, inline
//! `#[cfg(test)] mod …`) is left out: a test may use the simulator or a
//! higher layer to drive the code under test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Directories whose files are nodes of their own.
const SPLIT: [&str; 3] = ["cliq", "mirror", "sync"];

/// The layers, lowest first. A module may use its own layer and the ones
/// below it, never one above. Kept in step with the crate doc (`src/lib.rs`).
const LAYERS: [&[&str]; 10] = [
    // Foundations: no business knowledge, and the shapes of Cliq's JSON
    // (the one reader of a user object; the mirror stores what it reads).
    &["clock", "text", "json", "systemd", "cliq::models"],
    // The store.
    &["mirror"],
    // Talking to Cliq (the quota scheduler persists in the store).
    &["cliq"],
    // The test peer, and the HR source.
    &["sim", "hr"],
    // The settings (they parse into the types of the layers below).
    &["config"],
    // Moving data, and what reports on it.
    &["sync", "status", "notify", "progress", "logging"],
    // The assembled parts every command and the daemon share, and how a
    // command's end maps to its exit code.
    &["app", "exit"],
    // Long-running parts.
    &["server", "daemon"],
    // Building and running them.
    &["startup"],
    // Commands.
    &["check_config", "demo", "cli"],
];

/// The layer of the longest LAYERS entry that is `node` or a parent of it
/// (`cliq::models::user` is in `cliq::models`'s layer, `cliq::client` in
/// `cliq`'s).
fn layer_of(node: &str) -> usize {
    let within = |entry: &str| node == entry || node.starts_with(&format!("{entry}::"));
    LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, l)| l.iter().filter(|e| within(e)).map(move |e| (e.len(), i)))
        .max()
        .map(|(_, i)| i)
        .unwrap_or_else(|| {
            panic!("module `{node}` has no layer: add it to LAYERS (and to src/lib.rs)")
        })
}

pub(crate) fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file: `src/cliq/client/tests.rs` → `cliq::client::tests`.
pub(crate) fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The graph node a module path belongs to, if any (the crate root is none).
fn node_of(path: &[String], src: &Path) -> Option<String> {
    let top = path.first()?;
    // `crate::install_crypto_provider` and the like: the crate root.
    if !src.join(format!("{top}.rs")).exists() && !src.join(top).is_dir() {
        return None;
    }
    if SPLIT.contains(&top.as_str()) {
        if let Some(sub) = path.get(1) {
            let file = src.join(top).join(format!("{sub}.rs"));
            let dir = src.join(top).join(sub).join("mod.rs");
            if file.exists() || dir.exists() {
                return Some(format!("{top}::{sub}"));
            }
        }
    }
    Some(top.clone())
}

/// Production code only: comments stripped, inline test modules cut off.
fn production_code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t == "#[cfg(test)]" {
            if let Some(next) = lines.peek() {
                let n = next.trim_start();
                if n.contains("mod ") && n.trim_end().ends_with('{') {
                    break;
                }
            }
        }
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// Every path that starts with `crate::` or `super::`, expanded (`use
/// crate::{a, b::c}` gives `a` and `b::c`), as absolute module paths.
fn referenced_paths(code: &str, here: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let starts_ident = i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_');
        let rest: String = bytes[i..bytes.len().min(i + 7)].iter().collect();
        if starts_ident && (rest.starts_with("crate::") || rest.starts_with("super::")) {
            let (base, mut j) = if rest.starts_with("crate::") {
                (Vec::new(), i + 7)
            } else {
                let mut base = here.to_vec();
                let mut j = i;
                while bytes[j..].iter().collect::<String>().starts_with("super::") {
                    base.pop();
                    j += 7;
                }
                (base, j)
            };
            j = expand(&bytes, j, base, &mut out);
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// Reads a path tail at `j` (segments, maybe a `{…}` group) after `base`.
fn expand(s: &[char], mut j: usize, mut base: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    loop {
        while j < s.len() && s[j].is_whitespace() {
            j += 1;
        }
        if j < s.len() && s[j] == '{' {
            j += 1;
            loop {
                j = expand(s, j, base.clone(), out);
                while j < s.len() && (s[j].is_whitespace() || s[j] == ',') {
                    j += 1;
                }
                if j >= s.len() || s[j] == '}' {
                    return j + 1;
                }
            }
        }
        let start = j;
        while j < s.len() && (s[j].is_alphanumeric() || s[j] == '_') {
            j += 1;
        }
        if j > start {
            base.push(s[start..j].iter().collect());
        }
        if s[j..].iter().take(2).collect::<String>() == "::" {
            j += 2;
        } else {
            out.push(base);
            return j;
        }
    }
}

struct Graph {
    edges: BTreeMap<String, BTreeSet<String>>,
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        if rel.file_name().is_some_and(|n| n == "tests.rs") || rel == Path::new("main.rs") {
            continue;
        }
        let here = module_path(rel);
        let Some(from) = node_of(&here, &src) else {
            continue;
        };
        // A directory module's own file (`sync/mod.rs`) only declares and
        // re-exports its children: it is the directory, not a node of its own.
        let is_split_dir = SPLIT.contains(&from.as_str());
        let code = production_code(&std::fs::read_to_string(&file).unwrap());
        for path in referenced_paths(&code, &here) {
            let Some(to) = resolve(&path, &src) else {
                continue;
            };
            if to != from && !is_split_dir {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    Graph { edges }
}

/// The node a used path lands on; `crate::sync::PullKind` lands on the file
/// that `sync/mod.rs` re-exports it from.
fn resolve(path: &[String], src: &Path) -> Option<String> {
    let node = node_of(path, src)?;
    if !SPLIT.contains(&node.as_str()) || path.len() < 2 {
        return Some(node);
    }
    let mod_rs = std::fs::read_to_string(src.join(&node).join("mod.rs")).ok()?;
    let name = &path[1];
    for line in mod_rs.lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((sub, names)) = rest.split_once("::") else {
            continue;
        };
        let listed = names
            .trim_end_matches(';')
            .trim_matches(|c| c == '{' || c == '}')
            .split(',')
            .any(|n| n.trim() == name);
        if listed {
            return Some(format!("{node}::{sub}"));
        }
    }
    Some(node)
}

/// Every strongly connected component with more than one module.
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    let nodes: BTreeSet<&String> = g
        .edges
        .iter()
        .flat_map(|(a, bs)| bs.iter().chain([a]))
        .collect();
    let reach = |from: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(n) = todo.pop() {
            for m in g.edges.get(&n).into_iter().flatten() {
                if seen.insert(m.clone()) {
                    todo.push(m.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&String, BTreeSet<String>> =
        nodes.iter().map(|n| (*n, reach(n))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for n in &nodes {
        if done.contains(*n) || !reached[n].contains(*n) {
            continue;
        }
        let scc: Vec<String> = nodes
            .iter()
            .filter(|m| reached[n].contains(**m) && reached[*m].contains(*n))
            .map(|m| (*m).clone())
            .collect();
        done.extend(scc.iter().cloned());
        out.push(scc);
    }
    out
}

#[test]
fn the_module_graph_has_no_cycles() {
    let g = graph();
    let found = cycles(&g);
    let described: Vec<String> = found
        .iter()
        .map(|scc| {
            let inner: Vec<String> = scc
                .iter()
                .flat_map(|a| {
                    g.edges[a]
                        .iter()
                        .filter(|b| scc.contains(b))
                        .map(move |b| format!("{a} → {b}"))
                })
                .collect();
            format!("[{}]: {}", scc.join(", "), inner.join("; "))
        })
        .collect();
    assert!(
        found.is_empty(),
        "{} import cycle(s):\n{}",
        found.len(),
        described.join("\n")
    );
}

#[test]
fn no_lower_layer_reaches_up() {
    let g = graph();
    let upward: Vec<String> = g
        .edges
        .iter()
        .flat_map(|(a, bs)| bs.iter().map(move |b| (a, b)))
        .filter(|(a, b)| layer_of(a) < layer_of(b))
        .map(|(a, b)| format!("{a} → {b}"))
        .collect();
    assert!(
        upward.is_empty(),
        "{} upward reach(es) (a lower layer using a higher one):\n{}",
        upward.len(),
        upward.join("\n")
    );
}

/// The guard itself must see what it guards: a known edge is found.
#[test]
fn the_guard_sees_known_edges() {
    let g = graph();
    assert!(
        g.edges["cliq::client"].contains("cliq::quotas"),
        "{:?}",
        g.edges["cliq::client"]
    );
    assert!(
        g.edges["sync::pull"].contains("mirror::store"),
        "{:?}",
        g.edges["sync::pull"]
    );
}

/// The crate doc's layer list (`src/lib.rs`, "## Layers") is this table.
#[test]
fn the_crate_doc_lists_the_same_layers() {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let section = lib
        .split("//! ## Layers")
        .nth(1)
        .unwrap()
        .split("//! ## ")
        .next()
        .unwrap();
    let mut documented: Vec<Vec<String>> = Vec::new();
    for line in section.lines() {
        let text = line.trim_start_matches("//!").trim();
        let numbered = text
            .split_once(". ")
            .filter(|(n, _)| n.parse::<u32>().is_ok());
        let body = match numbered {
            Some((_, body)) => {
                documented.push(Vec::new());
                body
            }
            None if documented.is_empty() => continue,
            None => text,
        };
        let names = body
            .split("[`")
            .skip(1)
            .map(|s| s.split('`').next().unwrap().to_owned());
        documented.last_mut().unwrap().extend(names);
    }
    let table: Vec<Vec<String>> = LAYERS
        .iter()
        .map(|l| l.iter().map(|s| s.to_string()).collect())
        .collect();
    assert_eq!(documented, table);
}
