"""Runs the grpcurl walk-through, docs/walkthrough.md (see walkthrough_check.py), against a real server."""

import tempfile

import walkthrough_check


def test_walkthrough():
    where, text = walkthrough_check.find_doc(None)
    with tempfile.TemporaryDirectory(prefix="missive-walkthrough-") as workdir:
        run = walkthrough_check.run(text, workdir)
    problems = walkthrough_check.check(run)
    assert not problems, (
        f"{where}:\n  - " + "\n  - ".join(problems)
        + f"\n--- stdout\n{run.stdout}\n--- stderr\n{run.stderr}\n--- server log\n{run.server_log[-3000:]}"
    )
