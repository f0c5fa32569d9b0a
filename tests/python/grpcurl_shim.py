"""A stand-in for the subset of `grpcurl` the README walk-through uses, built on Reflector.

grpcurl cannot be installed here, so `walkthrough_check.py` puts this script on PATH as
`grpcurl` and runs the walk-through's shell blocks unchanged. It follows grpcurl where the
walk-through depends on it:

- Go-style flags, all before the address (grpcurl stops reading flags at the first
  positional argument): -plaintext (required: the server speaks h2c), -H 'name: value'
  (sent with reflection requests too), -d JSON or -d @ (stdin), -emit-defaults, -max-time.
  Any other flag is refused, so the walk-through cannot silently rely on something this
  stand-in does not check.
- `ADDRESS list [SERVICE]` and `ADDRESS pkg.Service/Method`; schemas only from reflection.
- Output in the protobuf JSON mapping (lowerCamelCase names, int64 as strings, defaults
  omitted), one JSON document per response message.
- On an error status: `ERROR:` / `Code: InvalidArgument` / `Message: ...` on stderr and exit
  code 64 + the status code.

The walk-through says 127.0.0.1:50051; the checker's server listens elsewhere, so
WALKTHROUGH_TARGET maps that one address to the real one. Every call is appended to the JSON
lines file WALKTHROUGH_LOG (stream messages one line each, as they arrive) for the checker's
assertions.
"""

from __future__ import annotations

import json
import os
import sys

import grpc
from google.protobuf import json_format

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reflector import Reflector, format_json  # noqa: E402

DOC_TARGET = "127.0.0.1:50051"
BOOL_FLAGS = {"plaintext", "emit-defaults"}
VALUE_FLAGS = {"H", "d", "max-time"}


def usage(message: str) -> None:
    print(message, file=sys.stderr)
    print("Try 'grpcurl -help' for more details.", file=sys.stderr)
    sys.exit(2)


def parse(argv: list[str]) -> tuple[dict, list[str]]:
    """Go `flag` parsing: -name / --name, -name=value or -name value, up to the first
    positional argument."""
    opts: dict = {"H": []}
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] not in ("-", "--"):
        name, eq, value = argv[i].lstrip("-").partition("=")
        if name in BOOL_FLAGS:
            opts[name] = value.lower() not in ("false", "0") if eq else True
        elif name in VALUE_FLAGS:
            if not eq:
                i += 1
                if i >= len(argv):
                    usage(f"flag needs an argument: -{name}")
                value = argv[i]
            if name == "H":
                opts["H"].append(value)
            else:
                opts[name] = value
        else:
            usage(f"grpcurl_shim: flag -{name} is not supported by the stand-in")
        i += 1
    if i < len(argv) and argv[i] == "--":
        i += 1
    return opts, argv[i:]


def log(entry: dict) -> None:
    path = os.environ.get("WALKTHROUGH_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()


def status_name(code: grpc.StatusCode) -> str:
    """grpc-go's spelling of a code: INVALID_ARGUMENT -> InvalidArgument."""
    special = {"OK": "OK"}
    return special.get(code.name, "".join(p.capitalize() for p in code.name.split("_")))


def fail_status(err: grpc.RpcError, entry: dict) -> None:
    entry.update(status=err.code().name, message=err.details())
    log(entry)
    sys.stdout.flush()
    print(f"ERROR:\n  Code: {status_name(err.code())}\n  Message: {err.details()}", file=sys.stderr)
    sys.exit(64 + err.code().value[0])


def main(argv: list[str]) -> None:
    opts, args = parse(argv)
    if not opts.get("plaintext"):
        print(f'Failed to dial target host "{args[0] if args else ""}": TLS handshake failed '
              "(the stand-in only speaks -plaintext)", file=sys.stderr)
        sys.exit(1)
    if not args:
        usage("Too few arguments.")
    address, rest = args[0], args[1:]
    if address != DOC_TARGET:
        usage(f"grpcurl_shim: the walk-through must use {DOC_TARGET}, not {address}")
    target = os.environ.get("WALKTHROUGH_TARGET", DOC_TARGET)

    headers = []
    for h in opts["H"]:
        name, sep, value = h.partition(":")
        if not sep:
            usage(f"Invalid header: {h!r}")
        headers.append((name.strip().lower(), value.strip()))
    max_time = float(opts["max-time"]) if "max-time" in opts else None
    emit = bool(opts.get("emit-defaults"))
    reflector = Reflector(target, headers=headers, timeout=max_time or 30.0)

    if not rest:
        usage("Too few arguments.")
    if rest[0] == "list":
        if len(rest) > 2:
            usage("Too many arguments.")
        names = reflector.list_services() if len(rest) == 1 else reflector.list_methods(rest[1])
        log({"argv": argv, "list": rest[1:], "result": names})
        print("\n".join(names))
        return
    if len(rest) > 1:
        usage("Too many arguments.")
    method = rest[0]

    data = opts.get("d", "")
    if data == "@":
        data = sys.stdin.read()
    entry: dict = {"argv": argv, "method": method}
    m = reflector.method(method)
    request_cls, _ = reflector.types(method)
    body = data if data.strip() else None
    try:
        request = json_format.Parse(body, request_cls()) if body else request_cls()
    except json_format.ParseError as err:
        print(f"Error invoking method \"{method}\": error getting request data: {err}", file=sys.stderr)
        sys.exit(1)
    entry["request"] = json.loads(format_json(request))

    if m.server_streaming:
        call = reflector.stream(method, body, timeout=max_time)
        entry["stream"] = True
        log(entry)
        try:
            for message in call:
                text = format_json(message, emit)
                log({"method": method, "stream_message": json.loads(text)})
                print(text, flush=True)
        except grpc.RpcError as err:
            fail_status(err, {"method": method, "stream_end": True})
        log({"method": method, "stream_end": True, "status": "OK"})
        return

    try:
        response = reflector.invoke(method, body)
    except grpc.RpcError as err:
        fail_status(err, entry)
    text = format_json(response, emit)
    entry.update(status="OK", response=json.loads(text))
    log(entry)
    print(text, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
