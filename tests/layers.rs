//! The layer rule, checked: `domain` < `store` < `events` < `auth` < `api` < the process
//! (`server`, `cli`, `jobs`, `config`, `telemetry` and the rest). A module may use its own
//! layer and those below it, never one above: a change to the API cannot break the store,
//! and the domain depends on nothing of ours. The check reads every `crate::` path in each
//! layer's files (tests included: they live beside the code they test).

use std::path::Path;

/// Each layer's rank; a root module not named here is the process, above them all.
const LAYERS: [(&str, u8); 5] = [("domain", 1), ("store", 2), ("events", 3), ("auth", 4), ("api", 5)];
const PROCESS: u8 = 6;

fn rank(root_module: &str) -> u8 {
    LAYERS.iter().find(|(name, _)| *name == root_module).map_or(PROCESS, |(_, rank)| *rank)
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// The root modules that the code of `text` names by `crate::<module>` or in a group,
/// `crate::{a::…, b}` (comments left out).
fn uses(text: &str) -> Vec<String> {
    let code: Vec<&str> = text.lines().filter(|line| !line.trim_start().starts_with("//")).collect();
    let code = code.join("\n");
    let mut found = Vec::new();
    for (index, _) in code.match_indices("crate::") {
        if code[..index].chars().next_back().is_some_and(is_word) {
            continue;
        }
        let rest = &code[index + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(group) => found.extend(group_heads(group)),
            None => found.push(word(rest)),
        }
    }
    found.retain(|module| !module.is_empty());
    found
}

/// The first name of each item of a group, from after its `{` to its closing `}`.
fn group_heads(group: &str) -> Vec<String> {
    let (mut heads, mut depth, mut item_starts) = (Vec::new(), 0, true);
    for (index, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => item_starts = true,
            c if item_starts && !c.is_whitespace() => {
                heads.push(word(&group[index..]));
                item_starts = false;
            }
            _ => {}
        }
    }
    heads
}

fn word(text: &str) -> String {
    text.chars().take_while(|c| is_word(*c)).collect()
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[test]
fn no_layer_uses_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut upward = Vec::new();
    for (layer, own_rank) in LAYERS {
        let mut files = Vec::new();
        sources(&src.join(layer), &mut files);
        assert!(!files.is_empty(), "no sources under src/{layer}");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for used in uses(&text).into_iter().filter(|used| rank(used) > own_rank) {
                upward.push(format!("{} uses crate::{used}", file.strip_prefix(&src).unwrap().display()));
            }
        }
    }
    assert!(upward.is_empty(), "imports that run up a layer:\n{}", upward.join("\n"));
}

#[test]
fn the_check_sees_an_upward_path() {
    assert_eq!(
        uses("use crate::api::pb;\n// crate::server in a comment\nlet x = crate::store::Store::open;"),
        ["api", "store"]
    );
    let grouped = "use crate::{\n    domain::{Caller, Error},\n    // events\n    jobs, store::{self, Store},\n};";
    assert_eq!(uses(grouped), ["domain", "jobs", "store"]);
    assert!(rank("api") > rank("store") && rank("server") > rank("api"));
}
