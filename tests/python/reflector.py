"""A tiny grpcurl-like client driven only by server reflection.

Nothing here is generated from Missive's .proto files: every service, method and message
type is discovered at run time through the server reflection service (v1alpha, which
every grpcurl version speaks), loaded into a `DescriptorPool`, and turned into message
classes with `message_factory.GetMessageClass`. Request bodies are JSON strings parsed with
`json_format.Parse`, exactly as `grpcurl -d '{...}'` takes them, and responses come back as
the dicts `grpcurl` would print (protobuf JSON mapping: lowerCamelCase field names, 64-bit
integers as strings, default values omitted).

Also the shared server-launching helpers used by the pytest suite and by
`walkthrough_check.py`.
"""

from __future__ import annotations

import collections
import json
import os
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Union

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

# target/debug/missive of this checkout (/work/main/target/debug/missive here).
DEFAULT_BIN = str(Path(__file__).resolve().parents[2] / "target" / "debug" / "missive")

Body = Union[str, Mapping[str, Any], None]


# grpc's ClientCallDetails is an interface without a copy method; this namedtuple lets the
# interceptor hand on a copy of the details with the extra metadata.
_CallDetails = collections.namedtuple(
    "_CallDetails",
    ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"),
)


class _HeaderInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds headers such as `authorization: Bearer <key>` to every call, reflection
    included: `grpcurl -H` headers go to the reflection calls as well as to the method."""

    def __init__(self, headers: list[tuple[str, str]]):
        self._headers = list(headers)

    def _details(self, d):
        return _CallDetails(
            d.method,
            d.timeout,
            list(d.metadata or []) + self._headers,
            d.credentials,
            getattr(d, "wait_for_ready", None),
            getattr(d, "compression", None),
        )

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)


class Reflector:
    """One grpcurl "session": a target, an API key, and what reflection told us.

    `Reflector(target, key).call("missive.v1.AdminService/CreateUser", '{"user": ...}')` is
    `grpcurl -plaintext -H "authorization: Bearer $key" -d '{"user": ...}' target
    missive.v1.AdminService/CreateUser`.
    """

    def __init__(
        self,
        target: str,
        key: str | None = None,
        timeout: float = 10.0,
        headers: list[tuple[str, str]] = (),
    ):
        self.target = target
        self.timeout = timeout
        headers = list(headers)
        if key:
            headers.append(("authorization", f"Bearer {key}"))
        self._raw_channel = grpc.insecure_channel(target)
        self.channel = (
            grpc.intercept_channel(self._raw_channel, _HeaderInterceptor(headers))
            if headers
            else self._raw_channel
        )
        self._db = ProtoReflectionDescriptorDatabase(self.channel)
        self._pool = descriptor_pool.DescriptorPool(self._db)

    def close(self) -> None:
        self._raw_channel.close()

    def __enter__(self) -> "Reflector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- discovery (grpcurl list / describe) ----------------------------------------

    def list_services(self) -> list[str]:
        """`grpcurl list`: the full names of the services the server registered."""
        return sorted(self._db.get_services())

    def list_methods(self, service: str) -> list[str]:
        """`grpcurl list SERVICE`: `SERVICE.Method` for each of its methods."""
        svc = self._pool.FindServiceByName(service)
        return [f"{service}.{m.name}" for m in svc.methods]

    def method(self, full_method: str):
        """The MethodDescriptor of `pkg.Service/Method` (or `pkg.Service.Method`)."""
        service, _, name = full_method.replace("/", ".").rpartition(".")
        return self._pool.FindServiceByName(service).methods_by_name[name]

    def types(self, full_method: str):
        """The (request class, response class) of a method, built from reflection."""
        m = self.method(full_method)
        return (
            message_factory.GetMessageClass(m.input_type),
            message_factory.GetMessageClass(m.output_type),
        )

    # --- calls (grpcurl -d) ---------------------------------------------------------

    def _prepare(self, full_method: str, body: Body):
        m = self.method(full_method)
        request_cls, response_cls = self.types(full_method)
        request = request_cls()
        if body is not None:
            text = body if isinstance(body, str) else json.dumps(body)
            json_format.Parse(text, request)
        path = f"/{m.containing_service.full_name}/{m.name}"
        return m, path, request, response_cls

    def invoke(self, full_method: str, body: Body = None):
        """A unary call with a JSON body; returns the response message."""
        m, path, request, response_cls = self._prepare(full_method, body)
        assert not m.client_streaming and not m.server_streaming, f"{full_method} is streaming"
        rpc = self.channel.unary_unary(
            path,
            request_serializer=lambda msg: msg.SerializeToString(),
            response_deserializer=response_cls.FromString,
        )
        return rpc(request, timeout=self.timeout)

    def call(self, full_method: str, body: Body = None) -> dict:
        """A unary call with a JSON body; returns the response as grpcurl prints it."""
        return to_json(self.invoke(full_method, body))

    def stream(self, full_method: str, body: Body = None, timeout: float | None = None):
        """A server-streaming call. Returns the grpc call: iterate it for response messages
        and `cancel()` it when done. See also `take`."""
        m, path, request, response_cls = self._prepare(full_method, body)
        assert m.server_streaming and not m.client_streaming, f"{full_method} is not server-streaming"
        rpc = self.channel.unary_stream(
            path,
            request_serializer=lambda msg: msg.SerializeToString(),
            response_deserializer=response_cls.FromString,
        )
        return rpc(request, timeout=timeout if timeout is not None else self.timeout)

    def take(self, full_method: str, body: Body, count: int, timeout: float | None = None) -> list[dict]:
        """The first `count` messages of a server stream as JSON dicts; then cancels it."""
        call = self.stream(full_method, body, timeout=timeout)
        out: list[dict] = []
        try:
            for msg in call:
                out.append(to_json(msg))
                if len(out) >= count:
                    break
        finally:
            call.cancel()
        return out


def format_json(message, emit_defaults: bool = False) -> str:
    """A message as grpcurl prints it: protobuf JSON mapping (lowerCamelCase names, 64-bit
    integers as strings, enum names), two-space indent, default values omitted unless
    `-emit-defaults`."""
    return json_format.MessageToJson(
        message, indent=2, always_print_fields_with_no_presence=emit_defaults
    )


def to_json(message, emit_defaults: bool = False) -> dict:
    """The dict of what grpcurl would print for a message."""
    return json.loads(format_json(message, emit_defaults))


def rpc_error(fn, *args, **kwargs) -> grpc.RpcError:
    """Runs a call expected to fail and returns its error (`.code()`, `.details()`)."""
    try:
        fn(*args, **kwargs)
    except grpc.RpcError as err:
        return err
    raise AssertionError("the call succeeded; an error status was expected")


# --- running a server ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    target: str
    database_url: str
    admin_key: str
    log_path: str

    def log(self) -> str:
        return _read(self.log_path)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def missive_bin() -> str:
    return os.environ.get("MISSIVE_BIN", DEFAULT_BIN)


def create_admin_key(database_url: str, binary: str | None = None) -> str:
    """`missive keys create --role admin`: only the key is on stdout."""
    out = subprocess.run(
        [binary or missive_bin(), "keys", "create", "--role", "admin", "--database-url", database_url],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    key = out.stdout.strip()
    assert key.startswith("msk_") and "\n" not in key, f"unexpected stdout: {out.stdout!r}"
    return key


def launch(listen: str, database_url: str, workdir: str, binary: str | None = None) -> subprocess.Popen:
    """Starts `missive --listen LISTEN --database-url URL` in `workdir`, its output (stdout
    and stderr) in `workdir/server.log`. Only the given SQLite URL is used, whatever the
    environment says (MISSIVE_TEST_DATABASE_URL, MISSIVE_DATABASE_URL are dropped)."""
    env = dict(os.environ)
    for name in ("MISSIVE_TEST_DATABASE_URL", "MISSIVE_DATABASE_URL", "MISSIVE_LISTEN"):
        env.pop(name, None)
    env.setdefault("NO_COLOR", "1")
    with open(os.path.join(workdir, "server.log"), "wb") as log:
        return subprocess.Popen(
            [binary or missive_bin(), "--listen", listen, "--database-url", database_url],
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )


def wait_ready(
    process: subprocess.Popen, target: str, log_path: str, key: str | None = None, timeout: float = 30.0
) -> None:
    """Waits until the server answers: `grpc.health.v1.Health/Check` (resolved through
    reflection like everything else) says SERVING, or answers with a status other than
    UNAVAILABLE (e.g. UNAUTHENTICATED without a key: it is up)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"missive exited with {process.returncode}:\n{_read(log_path)}")
        try:
            with Reflector(target, key, timeout=1.0) as r:
                status = r.call("grpc.health.v1.Health/Check", "{}").get("status")
            if status == "SERVING":
                return
            last = status
        except grpc.RpcError as err:
            if err.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                return
            last = err.code()
        time.sleep(0.1)
    raise RuntimeError(f"missive did not answer on {target} ({last}):\n{_read(log_path)}")


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def start_server(workdir: str | None = None, binary: str | None = None) -> Server:
    """`missive keys create --role admin`, then `missive` on a free loopback port with that
    fresh SQLite database; returns once the server answers."""
    workdir = workdir or tempfile.mkdtemp(prefix="missive-py-")
    database_url = f"sqlite:{os.path.join(workdir, 'missive.db')}"
    admin_key = create_admin_key(database_url, binary)
    target = f"127.0.0.1:{free_port()}"
    process = launch(target, database_url, workdir, binary)
    server = Server(process, target, database_url, admin_key, os.path.join(workdir, "server.log"))
    try:
        wait_ready(process, target, server.log_path, admin_key)
    except BaseException:
        server.stop()
        raise
    return server
