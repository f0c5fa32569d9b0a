//! Runs the tests in `tests/python/`: a client that knows Missive only through server
//! reflection, as grpcurl does, and the README's grpcurl walk-through run as written. The
//! Python environment they need (grpcio, grpcio-reflection, pytest) is made on first use in
//! `target/python-venv` from `tests/python/requirements.txt`.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

mod support;

use support::run;

/// The virtual environment, created or brought up to date with the requirements.
fn python_environment(root: &Path) -> PathBuf {
    let venv = root.join("target").join("python-venv");
    let python = venv.join("bin").join("python");
    let requirements = root.join("tests").join("python").join("requirements.txt");
    let stamp = venv.join("requirements.installed");
    let wanted = std::fs::read_to_string(&requirements).expect("tests/python/requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) && python.exists() {
        return python;
    }
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&requirements));
    std::fs::write(&stamp, wanted).expect("write the requirements stamp");
    python
}

#[test]
fn python_reflection_client_and_readme_walkthrough_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = python_environment(root);
    run(Command::new(python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/python"])
        .current_dir(root)
        .env("MISSIVE_BIN", env!("CARGO_BIN_EXE_missive")));
}
