"""The API catalogue, read from the generated protobuf descriptors.

One source of truth for what each RPC is: its gRPC path, owning service, access
level (`tradesense.common.v1.access`) and REST binding. The gateway config, the
auth interceptor and the OpenAPI description are all derived from it.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache

import tradesense
from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import FileDescriptor, MethodDescriptor
from tradesense.common.v1 import options_pb2

ACCESS_NAMES = {v: k for k, v in options_pb2.Access.items()}


@dataclass(frozen=True)
class Method:
    service: str  # short service name owning it: "auth", "market", ...
    full_service: str  # "tradesense.auth.v1.AuthService"
    name: str  # "Login"
    access: str  # PUBLIC | AUTHENTICATED | ADMIN | INTERNAL
    http_verb: str | None  # "get", "post", ...
    http_path: str | None  # "/api/auth/login"
    http_body: str | None
    server_streaming: bool
    client_streaming: bool
    descriptor: MethodDescriptor
    sse_event: str | None = None  # a browser stream: the message each event carries

    @property
    def grpc_path(self) -> str:
        return f"/{self.full_service}/{self.name}"


def _file_descriptors() -> list[FileDescriptor]:
    found = []
    for mod in pkgutil.walk_packages(tradesense.__path__, "tradesense."):
        if mod.name.endswith("_pb2"):
            found.append(importlib.import_module(mod.name).DESCRIPTOR)
    return found


def _http(method: MethodDescriptor) -> tuple[str | None, str | None, str | None]:
    opts = method.GetOptions()
    if not opts.HasExtension(annotations_pb2.http):
        return None, None, None
    rule: http_pb2.HttpRule = opts.Extensions[annotations_pb2.http]
    verb = rule.WhichOneof("pattern")
    if verb is None or verb == "custom":
        return None, None, None
    return verb, getattr(rule, verb), rule.body or None


@cache
def methods() -> tuple[Method, ...]:
    out: list[Method] = []
    for fd in _file_descriptors():
        for svc in fd.services_by_name.values():
            short = fd.package.split(".")[1]
            for m in svc.methods:
                access_value = m.GetOptions().Extensions[options_pb2.access]
                access = ACCESS_NAMES.get(access_value, "AUTHENTICATED")
                if access == "ACCESS_UNSPECIFIED":
                    access = "AUTHENTICATED"
                verb, path, body = _http(m)
                out.append(
                    Method(
                        service=short,
                        full_service=svc.full_name,
                        name=m.name,
                        access=access,
                        http_verb=verb,
                        http_path=path,
                        http_body=body,
                        server_streaming=m.server_streaming,
                        client_streaming=m.client_streaming,
                        descriptor=m,
                        sse_event=m.GetOptions().Extensions[options_pb2.sse_event] or None,
                    )
                )
    return tuple(sorted(out, key=lambda m: m.grpc_path))


@cache
def by_grpc_path() -> dict[str, Method]:
    return {m.grpc_path: m for m in methods()}


def services() -> dict[str, list[str]]:
    """Short service name -> fully-qualified gRPC service names it serves."""
    out: dict[str, set[str]] = {}
    for m in methods():
        out.setdefault(m.service, set()).add(m.full_service)
    return {k: sorted(v) for k, v in out.items() if k != "common"}
