//! Runs the tests in `tests/python/`: a client that knows Missive only through server
//! reflection, as grpcurl does, and the grpcurl walk-through, `docs/walkthrough.md`, run as
//! written. The Python environment they need (grpcio, grpcio-reflection, pytest) is made on
//! first use in `target/python-venv` from `tests/python/requirements.txt`.

use std::{path::Path, process::Command};

mod support;

use support::run;

#[test]
fn python_reflection_client_and_docs_walkthrough_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = support::python_environment("python-venv", "tests/python/requirements.txt");
    run(Command::new(python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/python"])
        .current_dir(root)
        .env("MISSIVE_BIN", env!("CARGO_BIN_EXE_missive")));
}
