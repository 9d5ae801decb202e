//! What every package of the workspace ships: the license it declares. `cargo package` takes
//! only files inside a crate's own folder, so each member keeps a `LICENSE` link to the root's
//! text, and this test fails for a member that lacks it or carries another text.
#![allow(clippy::unwrap_used, missing_docs)]

use std::fs;
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `members` of the root manifest's `[workspace]`.
fn members(manifest: &str) -> Vec<String> {
    let line = manifest
        .lines()
        .find(|line| line.trim_start().starts_with("members"))
        .expect("the root manifest lists its members on one line");
    let list = &line[line.find('[').unwrap() + 1..line.rfind(']').unwrap()];
    list.split(',')
        .map(|m| m.trim().trim_matches('"').to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}

#[test]
fn every_member_ships_the_root_license() {
    let root = workspace();
    let license = fs::read(root.join("LICENSE")).expect("a LICENSE at the root");
    assert!(
        String::from_utf8_lossy(&license)
            .contains("Apache License\n                        Version 2.0"),
        "the root LICENSE is the Apache License 2.0 the manifests declare"
    );
    let manifest = fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("license = \"Apache-2.0\""));
    let members = members(&manifest);
    assert!(members.len() >= 7, "{members:?}");
    for member in members {
        let carried = fs::read(root.join(&member).join("LICENSE"))
            .unwrap_or_else(|e| panic!("{member}/LICENSE: {e}"));
        assert!(
            carried == license,
            "{member}/LICENSE is not the root's text"
        );
    }
}

#[test]
fn members_are_read_from_the_manifest_line() {
    let manifest = "[workspace]\nresolver = \"3\"\nmembers = [\"crates/a\", \"bin/b\"]\n";
    assert_eq!(members(manifest), ["crates/a", "bin/b"]);
}
