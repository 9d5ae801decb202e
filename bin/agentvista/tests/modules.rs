//! The workspace's layout rule, checked rather than remembered: no module of a crate imports,
//! directly or in a circle, a module that imports it back (`docs/architecture.md`).
//!
//! A crate's modules are its top-level files and folders under `src/`. Module `a` uses module
//! `b` when `a`'s code (comments and `#[cfg(test)] mod tests` blocks left out: tests are leaves)
//! names `crate::b`, or an item the crate root re-exports from `b` (`crate::Item`, `crate::{…}`).
//! The same holds among the modules of a folder (`dashboard/{pages,chart}.rs`): `a` uses its
//! sibling `b` when it names `super::b`, `crate::<folder>::b`, or an item the folder's `mod.rs`
//! re-exports from `b`. A module using its own folder's `mod.rs` is how Rust nests, not a circle.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
    found
}

/// The code of a file without comments and without its unit-test module.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The names a file reaches through `crate::`: `crate::a::…`, `crate::Item`, `crate::{a, b::c}`.
fn crate_paths(code: &str) -> Vec<String> {
    paths_after(code, "crate::")
}

/// The first names of the paths that follow `prefix` in `code`: `<prefix>a::…`,
/// `<prefix>Item`, `<prefix>{a, b::c}`.
fn paths_after(code: &str, prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in code.match_indices(prefix) {
        let rest = &code[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for item in inner.split(',') {
                let item = item.trim();
                if !item.is_empty() {
                    names.push(ident_at(item).to_owned());
                }
            }
        } else {
            names.push(ident_at(rest).to_owned());
        }
    }
    names
}

/// Items the crate root re-exports, by the module they come from: `pub use a::{X, Y};`.
fn reexports(root: &str) -> BTreeMap<String, String> {
    let mut from = BTreeMap::new();
    for line in root.lines() {
        let Some(rest) = line
            .trim()
            .strip_prefix("pub use ")
            .or_else(|| line.trim().strip_prefix("pub(crate) use "))
        else {
            continue;
        };
        let Some((module, items)) = rest.split_once("::") else {
            continue;
        };
        let items = items
            .trim_end_matches(';')
            .trim_matches(|c| c == '{' || c == '}');
        for item in items.split(',') {
            let name = item.trim().rsplit(" as ").next().unwrap_or("").trim();
            if !name.is_empty() {
                from.insert(name.to_owned(), module.to_owned());
            }
        }
    }
    from
}

/// Module → the modules it uses, for the crate whose sources are in `src`.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut root = String::new();
    for path in sources(src) {
        let relative = path.strip_prefix(src).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        let module = first.to_str().unwrap().trim_end_matches(".rs").to_owned();
        if module == "lib" || module == "main" {
            root = fs::read_to_string(&path).unwrap();
        } else {
            files.entry(module).or_default().push(path);
        }
    }
    let reexported = reexports(&root);
    let mut uses = BTreeMap::new();
    for (module, paths) in &files {
        let mut targets = BTreeSet::new();
        for path in paths {
            for name in crate_paths(&code(&fs::read_to_string(path).unwrap())) {
                let target = if files.contains_key(&name) {
                    Some(name)
                } else {
                    reexported.get(&name).cloned()
                };
                if let Some(target) = target.filter(|t| t != module && files.contains_key(t)) {
                    targets.insert(target);
                }
            }
        }
        uses.insert(module.clone(), targets);
    }
    uses
}

/// For every folder under `src` with a `mod.rs`: the folder (as a path, `dashboard`) and its
/// modules → the sibling modules each uses.
fn nested_graphs(src: &Path) -> Vec<(String, BTreeMap<String, BTreeSet<String>>)> {
    let mut graphs = Vec::new();
    for path in sources(src) {
        if path.file_name().is_none_or(|name| name != "mod.rs") {
            continue;
        }
        let dir = path.parent().unwrap();
        let folder = dir.strip_prefix(src).unwrap().to_str().unwrap().to_owned();
        let reexported = reexports(&fs::read_to_string(&path).unwrap());
        let mut children: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
        for entry in fs::read_dir(dir).unwrap() {
            let child = entry.unwrap().path();
            let name = child.file_name().unwrap().to_str().unwrap();
            // A folder's `tests.rs` is its `#[cfg(test)] mod tests`: a leaf, as above.
            if name == "tests.rs" {
                continue;
            }
            if child.is_dir() {
                let inner = sources(&child);
                if !inner.is_empty() {
                    children.insert(name.to_owned(), inner);
                }
            } else if name.ends_with(".rs") && name != "mod.rs" {
                children.insert(name.trim_end_matches(".rs").to_owned(), vec![child]);
            }
        }
        let through_crate = format!("crate::{}::", folder.replace('/', "::"));
        let mut uses = BTreeMap::new();
        for (module, paths) in &children {
            let mut targets = BTreeSet::new();
            for path in paths {
                let code = code(&fs::read_to_string(path).unwrap());
                // `super::` means the folder only in the module's own file.
                let own_file = path.parent() == Some(dir) || path.ends_with("mod.rs");
                let mut names = paths_after(&code, &through_crate);
                if own_file {
                    names.extend(paths_after(&code, "super::"));
                }
                for name in names {
                    let target = if children.contains_key(&name) {
                        Some(name)
                    } else {
                        reexported.get(&name).cloned()
                    };
                    if let Some(target) = target.filter(|t| t != module && children.contains_key(t))
                    {
                        targets.insert(target);
                    }
                }
            }
            uses.insert(module.clone(), targets);
        }
        graphs.push((folder, uses));
    }
    graphs
}

/// A module that reaches itself again through what it uses, with the way round.
fn circle(uses: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    for start in uses.keys() {
        // Depth-first from `start`, looking for a way back to it.
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((module, way)) = stack.pop() {
            for next in &uses[&module] {
                if next == start {
                    let mut way = way.clone();
                    way.push(start.clone());
                    return Some(way);
                }
                if seen.insert(next.clone()) {
                    let mut way = way.clone();
                    way.push(next.clone());
                    stack.push((next.clone(), way));
                }
            }
        }
    }
    None
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let root = workspace();
    let mut crates: Vec<PathBuf> = fs::read_dir(root.join("crates"))
        .unwrap()
        .map(|entry| entry.unwrap().path().join("src"))
        .collect();
    crates.push(root.join("bin/agentvista/src"));
    crates.push(root.join("migrations/src"));
    let mut circles = Vec::new();
    for src in &crates {
        let uses = graph(src);
        assert!(!uses.is_empty(), "{} has no modules?", src.display());
        if let Some(way) = circle(&uses) {
            circles.push(format!("{}: {}", src.display(), way.join(" → ")));
        }
        for (folder, uses) in nested_graphs(src) {
            if let Some(way) = circle(&uses) {
                circles.push(format!("{}/{folder}: {}", src.display(), way.join(" → ")));
            }
        }
    }
    assert!(
        circles.is_empty(),
        "modules in a circle:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_check_sees_a_circle_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    fs::write(
        src.join("lib.rs"),
        "mod a;\nmod b;\nmod c;\npub use c::Thing;\n",
    )
    .unwrap();
    fs::write(
        src.join("a.rs"),
        "use crate::b::f;\n// crate::c in a comment is no use\n",
    )
    .unwrap();
    fs::write(src.join("b.rs"), "use crate::{Thing, a::g};\n").unwrap();
    fs::write(src.join("c.rs"), "pub struct Thing;\n").unwrap();
    let uses = graph(src);
    assert_eq!(uses["a"], BTreeSet::from(["b".to_owned()]));
    assert_eq!(uses["b"], BTreeSet::from(["a".to_owned(), "c".to_owned()]));
    assert_eq!(
        circle(&uses),
        Some(vec!["a".into(), "b".into(), "a".into()])
    );

    fs::write(src.join("b.rs"), "use crate::Thing;\n").unwrap();
    assert_eq!(circle(&graph(src)), None);
}

#[test]
fn the_check_sees_a_circle_inside_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    fs::create_dir(src.join("pages")).unwrap();
    fs::write(src.join("lib.rs"), "mod pages;\n").unwrap();
    fs::write(
        src.join("pages/mod.rs"),
        "mod chart;\nmod list;\nmod format;\npub(crate) use list::render;\nfn page() {}\n",
    )
    .unwrap();
    fs::write(
        src.join("pages/list.rs"),
        "use super::page;\nfn render() { super::chart::draw() }\n",
    )
    .unwrap();
    fs::write(
        src.join("pages/chart.rs"),
        "fn draw() { super::render() }\n",
    )
    .unwrap();
    fs::write(src.join("pages/format.rs"), "fn thousands() {}\n").unwrap();
    let graphs = nested_graphs(src);
    assert_eq!(graphs.len(), 1);
    let (folder, uses) = &graphs[0];
    assert_eq!(folder, "pages");
    assert_eq!(uses["list"], BTreeSet::from(["chart".to_owned()]));
    assert_eq!(uses["chart"], BTreeSet::from(["list".to_owned()]));
    assert_eq!(
        circle(uses),
        Some(vec!["chart".into(), "list".into(), "chart".into()])
    );

    fs::write(
        src.join("pages/chart.rs"),
        "fn draw() { crate::pages::format::thousands() }\n",
    )
    .unwrap();
    let graphs = nested_graphs(src);
    assert_eq!(graphs[0].1["chart"], BTreeSet::from(["format".to_owned()]));
    assert_eq!(circle(&graphs[0].1), None);
}
