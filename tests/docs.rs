//! The documentation holds together: every relative Markdown link in `README.md`,
//! `CONTRIBUTING.md` and `docs/*.md` names a file that exists (relative to the linking
//! file) and, with a `#fragment`, a heading of that file whose GitHub anchor it is; the
//! README stays a five-minute read; and no document points outside the repository.
//! Links inside code (fenced blocks, `inline spans`) are not links and are not checked.

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md, CONTRIBUTING.md and every docs/*.md.
fn documents() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = fs::read_dir(root().join("docs"))
        .expect("read docs/")
        .map(|entry| entry.expect("a docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    [root().join("README.md"), root().join("CONTRIBUTING.md")].into_iter().chain(docs).collect()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
}

/// The lines of `markdown` outside fenced code blocks.
fn outside_fences(markdown: &str) -> Vec<&str> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            lines.push(line);
        }
    }
    lines
}

/// The prose of `markdown`: its lines outside fences, with inline code spans blanked (a
/// span may wrap onto the next line, never past a blank line).
fn prose(markdown: &str) -> Vec<String> {
    let mut in_code = false;
    let mut lines = Vec::new();
    for line in outside_fences(markdown) {
        if line.trim().is_empty() {
            in_code = false;
        }
        let mut kept = String::new();
        for c in line.chars() {
            if c == '`' {
                in_code = !in_code;
                kept.push(' ');
            } else {
                kept.push(if in_code { ' ' } else { c });
            }
        }
        lines.push(kept);
    }
    lines
}

/// GitHub's anchor for a heading: lowercase, punctuation dropped but for hyphens and
/// underscores, spaces as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings; a repeated heading gets `-1`, `-2`… as on
/// GitHub.
fn anchors(markdown: &str) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut anchors = Vec::new();
    for line in outside_fences(markdown) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
            let base = slug(line[hashes..].trim().trim_end_matches('#'));
            let count = seen.entry(base.clone()).or_insert(0);
            anchors.push(if *count == 0 { base.clone() } else { format!("{base}-{count}") });
            *count += 1;
        }
    }
    anchors
}

/// The targets of a document's links: inline `[text](target)` (images too) and
/// reference definitions `[label]: target`.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in prose(markdown) {
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let end = rest.find(')').unwrap_or(rest.len());
            // A title after the target (`(target "title")`) is not part of it.
            targets.extend(rest[..end].split_whitespace().next().map(str::to_owned));
            rest = &rest[end..];
        }
        let trimmed = line.trim_start();
        if let (true, Some(close)) = (trimmed.starts_with('['), trimmed.find("]:")) {
            targets.extend(trimmed[close + 2..].split_whitespace().next().map(str::to_owned));
        }
    }
    targets
}

/// What is wrong with the link `target` in `file`, if anything.
fn broken(file: &Path, target: &str) -> Option<String> {
    if ["http://", "https://", "mailto:"].iter().any(|scheme| target.starts_with(scheme)) {
        return None;
    }
    let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
    let linked = if path.is_empty() { file.to_path_buf() } else { file.parent().unwrap().join(path) };
    if !linked.exists() {
        return Some(format!("{target}: no file {}", linked.display()));
    }
    if anchor.is_empty() {
        return None;
    }
    if linked.extension().is_none_or(|ext| ext != "md") {
        return Some(format!("{target}: an anchor into a file that is not Markdown"));
    }
    let known = anchors(&read(&linked));
    (!known.iter().any(|a| a == anchor))
        .then(|| format!("{target}: no heading with that anchor in {}", linked.display()))
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut problems = Vec::new();
    for file in documents() {
        for target in link_targets(&read(&file)) {
            if let Some(problem) = broken(&file, &target) {
                problems.push(format!("{}: {problem}", file.strip_prefix(root()).unwrap().display()));
            }
        }
    }
    assert!(problems.is_empty(), "broken links:\n  {}", problems.join("\n  "));
}

#[test]
fn the_readme_is_a_five_minute_read() {
    let lines = read(&root().join("README.md")).lines().count();
    assert!(lines < 200, "README.md has {lines} lines; move detail into docs/ (200 at most, exclusive)");
}

#[test]
fn no_document_refers_outside_the_repository() {
    let mut problems = Vec::new();
    for file in documents() {
        let text = read(&file);
        for outside in ["../shared", "/work/"] {
            if text.contains(outside) {
                problems.push(format!("{} mentions {outside}", file.strip_prefix(root()).unwrap().display()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn slugs_follow_github() {
    assert_eq!(slug("1. Start the server and get an admin key"), "1-start-the-server-and-get-an-admin-key");
    assert_eq!(
        slug("Past one primary: Citus, distributed by account"),
        "past-one-primary-citus-distributed-by-account"
    );
    assert_eq!(slug("grpcurl walk-through"), "grpcurl-walk-through");
    assert_eq!(anchors("# A\n```\n# not a heading\n```\n## A\n"), ["a", "a-1"]);
}
