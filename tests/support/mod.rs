//! What the tests that drive outside tools (Python, npm, buf, Chromium) share.

use std::process::Command;

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
