//! Runs `tests/buf/check.sh` over the public protos in `proto/`: `buf lint`, `buf format
//! --diff --exit-code` and `buf breaking` against a baseline from git (the newest `v*` tag,
//! else `HEAD~1`, or `BUF_BREAKING_AGAINST`), as configured by `buf.yaml`. The checks live
//! in the script, which also runs on its own (`bash tests/buf/check.sh`). buf, pinned in
//! `tests/buf/package-lock.json`, is installed by the script on first use into
//! `target/buf-node` with `npm ci`.

use std::{path::Path, process::Command};

mod support;

use support::run;

#[test]
fn protos_pass_buf_lint_format_and_breaking() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    run(Command::new("bash").arg(root.join("tests").join("buf").join("check.sh")).current_dir(root));
}
