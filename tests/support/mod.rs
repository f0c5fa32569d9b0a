//! What the tests that drive outside tools (Python, npm, buf, Chromium) share.

// Each test binary that includes this module uses only some of it.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// Runs `command` to success, or fails the test with everything it printed. What it printed
/// on stdout is shown with `--nocapture` (which baseline buf compared against, and so on).
pub fn run(command: &mut Command) {
    let output = command.output().unwrap_or_else(|err| panic!("cannot run {command:?}: {err}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    print!("{}", String::from_utf8_lossy(&output.stdout));
}

/// The Python virtual environment `target/<name>` with the packages of `requirements`
/// (relative to the repository), made or brought up to date on first use; its python.
pub fn python_environment(name: &str, requirements: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = root.join("target").join(name);
    let python = venv.join("bin").join("python");
    let requirements = root.join(requirements);
    let stamp = venv.join("requirements.installed");
    let wanted = std::fs::read_to_string(&requirements).unwrap_or_else(|err| panic!("{requirements:?}: {err}"));
    // Tests of one binary run in parallel and may ask for the same environment at once; two
    // `venv` runs into one folder break each other's pip. The lock is released when dropped.
    let lock = std::fs::File::create(root.join("target").join(format!("{name}.lock")))
        .unwrap_or_else(|err| panic!("lock file for {name}: {err}"));
    lock.lock().unwrap_or_else(|err| panic!("lock {name}: {err}"));
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) && python.exists() {
        return python;
    }
    run(Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv));
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&requirements));
    std::fs::write(&stamp, wanted).expect("write the requirements stamp");
    python
}
