//! The lists in the documentation that must agree with the code: the configuration page against
//! `SessionConfig`'s `with_*` methods and the store builder's methods, the README's feature
//! table against `[features]` in `Cargo.toml`, the README's table of session-level methods
//! against `TypedSession`'s, and its metrics table against the names `observe.rs` emits. Each
//! check names what drifted, in both directions.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e} (if the file moved, update session/tests/docs_drift.rs)",
            path.display()
        )
    })
}

/// The names of the public functions in `source` whose name starts with `prefix`: `pub fn`,
/// `pub const fn` and `pub async fn` alike.
fn public_fns(source: &str, prefix: &str) -> BTreeSet<String> {
    source
        .lines()
        .filter_map(|line| {
            let line = line.trim_start();
            ["pub fn ", "pub const fn ", "pub async fn "]
                .iter()
                .find_map(|start| line.strip_prefix(start))
        })
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| name.starts_with(prefix))
        .collect()
}

/// Every identifier in `text` that starts with `prefix` and goes on after it.
fn identifiers(text: &str, prefix: &str) -> BTreeSet<String> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let starts_word = !rest[..at].ends_with(is_ident);
        let word: String = rest[at..].chars().take_while(|&c| is_ident(c)).collect();
        // A bare prefix (`with_*` in prose) names no method.
        if starts_word && word.len() > prefix.len() {
            found.insert(word.clone());
        }
        rest = &rest[at + word.len().max(1)..];
    }
    found
}

/// The first cells of the table that follows the line `header` in `text`, with their backticks
/// removed: `| `name` | … |` gives `name`.
fn first_cells(text: &str, header: &str, file: &str) -> BTreeSet<String> {
    let mut lines = text.lines().skip_while(|line| line.trim() != header);
    assert!(
        lines.next().is_some(),
        "{file} has no table headed `{header}`"
    );
    lines
        .skip(1) // the |---| line
        .take_while(|line| line.starts_with('|'))
        .map(|row| {
            let cell = row.trim_start_matches('|').split('|').next().unwrap_or("");
            cell.trim().trim_matches('`').to_owned()
        })
        .collect()
}

/// Fails with the names only in the code and the names only in the docs.
fn assert_same(
    what: &str,
    code: &BTreeSet<String>,
    code_file: &str,
    docs: &BTreeSet<String>,
    docs_file: &str,
) {
    let undocumented: Vec<_> = code.difference(docs).collect();
    let stale: Vec<_> = docs.difference(code).collect();
    assert!(
        undocumented.is_empty() && stale.is_empty(),
        "{what} drifted.\n  in {code_file} but not in {docs_file}: {undocumented:?}\n  in {docs_file} but not in {code_file}: {stale:?}"
    );
}

#[test]
fn configuration_page_names_every_with_method() {
    let code = public_fns(&read("src/config.rs"), "with_");
    assert!(
        code.len() > 10,
        "found only {code:?} in src/config.rs: is the parser stale?"
    );
    let page = identifiers(&read("docs/configuration.md"), "with_");
    assert_same(
        "SessionConfig's with_* methods",
        &code,
        "session/src/config.rs",
        &page,
        "session/docs/configuration.md",
    );
}

#[test]
fn configuration_page_lists_every_builder_method() {
    let code = public_fns(&read("src/store/builder.rs"), "");
    assert!(
        code.contains("build"),
        "found only {code:?} in src/store/builder.rs: is the parser stale?"
    );
    let table = first_cells(
        &read("docs/configuration.md"),
        "| method | default | notes |",
        "session/docs/configuration.md",
    );
    assert_same(
        "SessionStoreBuilder's methods",
        &code,
        "session/src/store/builder.rs",
        &table,
        "the builder table of session/docs/configuration.md",
    );
}

#[test]
fn readme_lists_every_cargo_feature() {
    let manifest = read("Cargo.toml");
    let features: BTreeSet<String> = manifest
        .lines()
        .skip_while(|line| line.trim() != "[features]")
        .skip(1)
        .take_while(|line| !line.trim_start().starts_with('['))
        .filter_map(|line| line.split_once('=').map(|(name, _)| name.trim()))
        .filter(|name| !name.is_empty() && !name.starts_with('#') && *name != "default")
        .map(str::to_owned)
        .collect();
    assert!(
        features.contains("derive"),
        "found only {features:?} in session/Cargo.toml: is the parser stale?"
    );
    let table = first_cells(
        &read("../README.md"),
        "| feature | what it adds |",
        "README.md",
    );
    assert_same(
        "The cargo features",
        &features,
        "session/Cargo.toml [features]",
        &table,
        "the feature table of README.md",
    );
}

/// The method names in the backticked code of `cell`: `` `set_store(bool)`, `has_store_consent()` ``
/// gives `set_store` and `has_store_consent`.
fn method_names(cell: &str) -> impl Iterator<Item = String> + '_ {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|code| code.split_once('('))
        .map(|(name, _)| name.to_owned())
}

#[test]
fn readme_lists_every_session_level_method() {
    // The methods of every type, and those of types with a `csrf` field.
    let blocks = [
        ("src/extract.rs", "impl<T: SessionData> TypedSession<T>"),
        ("src/csrf.rs", "impl<T: CsrfProtected> TypedSession<T>"),
    ];
    let code: BTreeSet<String> = blocks
        .iter()
        .flat_map(|(file, impl_line)| {
            public_fns(
                &read(file)
                    .lines()
                    .skip_while(|line| !line.starts_with(impl_line))
                    .take_while(|line| *line != "}")
                    .collect::<Vec<_>>()
                    .join("\n"),
                "",
            )
        })
        .collect();
    assert!(
        code.contains("destroy") && code.contains("id") && code.contains("csrf_token"),
        "found only {code:?} in src/extract.rs and src/csrf.rs: is the parser stale?"
    );
    let readme = read("../README.md");
    let header = "| method | what it does |";
    let mut rows = readme.lines().skip_while(|line| line.trim() != header);
    assert!(
        rows.next().is_some(),
        "README.md has no table headed `{header}`"
    );
    let table: BTreeSet<String> = rows
        .skip(1)
        .take_while(|line| line.starts_with('|'))
        .flat_map(|row| {
            let cell = row.trim_start_matches('|').split('|').next().unwrap_or("");
            method_names(cell).collect::<Vec<_>>()
        })
        .collect();
    assert_same(
        "TypedSession's session-level methods",
        &code,
        "session/src/extract.rs and session/src/csrf.rs",
        &table,
        "the session-level table of README.md",
    );
}

#[test]
fn readme_lists_every_metric() {
    // The names are the `typed_session_…` string constants of the one module that emits them.
    let code: BTreeSet<String> = identifiers(&read("src/observe.rs"), "typed_session_")
        .into_iter()
        .filter(|name| name.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .collect();
    assert!(
        code.contains("typed_session_backend_seconds") && code.len() > 8,
        "found only {code:?} in src/observe.rs: is the parser stale?"
    );
    let table = first_cells(
        &read("../README.md"),
        "| metric | kind | counts |",
        "README.md",
    );
    assert_same(
        "The metrics",
        &code,
        "session/src/observe.rs",
        &table,
        "the metrics table of README.md",
    );
}
