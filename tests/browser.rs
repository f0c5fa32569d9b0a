//! Runs the browser test in `tests/browser/`: a web app on another origin
//! (`http://localhost:<port>`, allowed with `--cors-allowed-origins`) calls Missive over
//! grpc-web from headless Chromium, with clients generated from `proto/` and connect-web's
//! grpc-web transport. It creates users, mints user tokens for them and calls with those,
//! makes a conversation and a message, lists it and gets its MESSAGE_CREATED on an open
//! `Subscribe` stream, reads errors' codes across origins, and is refused by the browser
//! when served from origins not in the list. `run.mjs` drives
//! Chromium and checks what the page shows.
//!
//! It needs `node` (20 or newer) and `npm`, and installs what it lacks on first use: Debian's
//! `chromium` package when `/usr/bin/chromium` is missing (`ensure-chromium.sh`: as root, or
//! with password-less sudo), and the npm packages pinned in `tests/browser/package-lock.json`
//! (buf, protoc-gen-es, connect-web, esbuild, playwright-core) in `target/browser-node`, again
//! whenever the lock file changes. The code generated from the protos and the bundled page go
//! to `target/browser-node/gen` and `target/browser-node/www`, remade on every run.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::Command,
};

mod support;

use support::run;

/// `target/browser-node` with the locked npm packages installed, reinstalled when the lock
/// file changes.
fn node_environment(root: &Path) -> PathBuf {
    let dir = root.join("target").join("browser-node");
    let sources = root.join("tests").join("browser");
    let stamp = dir.join("package-lock.installed");
    let wanted = std::fs::read_to_string(sources.join("package-lock.json")).expect("tests/browser/package-lock.json");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) && dir.join("node_modules").exists() {
        return dir;
    }
    std::fs::create_dir_all(&dir).expect("create target/browser-node");
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(sources.join(file), dir.join(file))
            .unwrap_or_else(|err| panic!("copy tests/browser/{file}: {err}"));
    }
    run(Command::new("npm").args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"]).current_dir(&dir));
    std::fs::write(&stamp, wanted).expect("write the package-lock stamp");
    dir
}

/// `PATH` with `dir` first.
fn path_with(dir: &Path) -> OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&path)))
        .expect("a PATH with node_modules/.bin")
}

#[test]
fn a_web_page_on_another_origin_uses_missive_over_grpc_web() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    run(Command::new("sh").arg("tests/browser/ensure-chromium.sh").current_dir(root));
    let node = node_environment(root);
    let bin = node.join("node_modules").join(".bin");
    // The page's clients, from the repository's protos as they are now (protoc-gen-es, found
    // on PATH).
    run(Command::new(bin.join("buf"))
        .args(["generate", "proto", "--template", "tests/browser/buf.gen.yaml", "--output"])
        .arg(&node)
        .current_dir(root)
        .env("PATH", path_with(&bin)));
    // The page's one script: app.js, the generated code and connect-web.
    run(Command::new(bin.join("esbuild"))
        .args(["tests/browser/app.js", "--bundle", "--format=esm", "--log-level=warning"])
        .arg(format!("--outfile={}", node.join("www").join("app.js").display()))
        .current_dir(root)
        .env("NODE_PATH", node.join("node_modules")));
    run(Command::new("node")
        .arg("tests/browser/run.mjs")
        .current_dir(root)
        .env("MISSIVE_BIN", env!("CARGO_BIN_EXE_missive")));
}
