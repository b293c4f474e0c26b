//! The runtime's modules import one way: the live value and everything it is made of sit below
//! the store, and inside the store a request's steps build on the backend protocol, never the
//! reverse. A cycle crept in once (`session.rs` took the live entry from the store while the store
//! took the session from `session.rs`); this fails, naming the file, when one comes back.

use std::fs;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, with its path relative to `session/src`.
fn sources(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path: PathBuf = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(root, &path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let relative = path.strip_prefix(root).expect("under the root");
            let text = fs::read_to_string(&path).expect("a readable source file");
            out.push((relative.to_string_lossy().replace('\\', "/"), text));
        }
    }
}

fn all_sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    sources(&root, &root, &mut out);
    assert!(
        out.iter().any(|(path, _)| path == "store/request.rs"),
        "session/src/store/request.rs is gone: update session/tests/layers.rs"
    );
    out
}

/// The files among `sources` for which `importer` holds that mention one of `imported`.
fn offenders(
    sources: &[(String, String)],
    importer: impl Fn(&str) -> bool,
    imported: &[&str],
) -> Vec<String> {
    sources
        .iter()
        .filter(|(path, _)| importer(path))
        .filter_map(|(path, text)| {
            let found: Vec<&str> = imported
                .iter()
                .copied()
                .filter(|name| text.contains(name))
                .collect();
            (!found.is_empty()).then(|| format!("{path} uses {}", found.join(", ")))
        })
        .collect()
}

#[test]
fn only_the_layer_and_the_store_itself_use_the_store() {
    let sources = all_sources();
    let uses = offenders(
        &sources,
        // The test kit sits on top of everything, like lib.rs: it drives the layer itself.
        |path| {
            !["lib.rs", "testing.rs"].contains(&path)
                && !path.starts_with("store/")
                && !path.starts_with("layer/")
        },
        &["crate::store", "super::store"],
    );
    assert!(
        uses.is_empty(),
        "modules below the store import it: {uses:#?}"
    );
}

#[test]
fn the_backend_protocol_never_uses_the_request_steps() {
    let sources = all_sources();
    let uses = offenders(
        &sources,
        |path| path == "store/load.rs" || path == "store/save.rs",
        &["store::request", "super::request"],
    );
    assert!(uses.is_empty(), "load/save import request: {uses:#?}");
    let uses = offenders(
        &sources,
        |path| path == "store/load.rs",
        &["store::save", "super::save"],
    );
    assert!(uses.is_empty(), "load imports save: {uses:#?}");
}
