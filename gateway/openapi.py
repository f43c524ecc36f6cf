"""The OpenAPI 3.1 description of the gateway's REST surface, derived from the protos.

The same catalogue that renders the Envoy config renders this, so the description cannot
drift from what the transcoder actually serves; `make protos` writes it to
gateway/generated/openapi.json. The JSON shapes follow the transcoder's print options
(render._transcoder): proto field names, every scalar printed, enums as names, 64-bit
integers as strings, Timestamps as RFC 3339 strings. Errors are google.rpc.Status.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from services.common import catalog

GENERATED = Path(__file__).resolve().parent / "generated"

_FD = FieldDescriptor
_INT64 = {_FD.TYPE_INT64, _FD.TYPE_UINT64, _FD.TYPE_SINT64, _FD.TYPE_FIXED64, _FD.TYPE_SFIXED64}
_INT32 = {_FD.TYPE_INT32, _FD.TYPE_UINT32, _FD.TYPE_SINT32, _FD.TYPE_FIXED32, _FD.TYPE_SFIXED32}
# Well-known types have their own JSON forms (proto3 JSON mapping).
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?\d+(\.\d+)?s$"},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.Any": {"type": "object", "properties": {"@type": {"type": "string"}}},
}
_PARAM = re.compile(r"\{([a-zA-Z0-9_.]+)(=[^}]*)?\}")

# The error body the gateway returns for every failure: the transcoder's rendering of
# google.rpc.Status (convert_grpc_status), and our direct responses in the same shape.
STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {"type": ["integer", "string"]},
        "message": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["code", "message"],
}


class _Schemas:
    """Collects component schemas for the messages and enums reached from the API."""

    def __init__(self) -> None:
        self.components: dict[str, dict[str, Any]] = {}

    def ref(self, name: str) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{name}"}

    def enum(self, e: EnumDescriptor) -> dict[str, Any]:
        if e.full_name not in self.components:
            self.components[e.full_name] = {"type": "string", "enum": [v.name for v in e.values]}
        return self.ref(e.full_name)

    def message(self, m: Descriptor, exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
        if m.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[m.full_name])
        if exclude:  # a request body without the fields bound in the path: inline, not shared
            return self._object(m, exclude)
        if m.full_name not in self.components:
            self.components[m.full_name] = {}  # placeholder first: messages may be recursive
            self.components[m.full_name] = self._object(m, exclude)
        return self.ref(m.full_name)

    def _object(self, m: Descriptor, exclude: frozenset[str]) -> dict[str, Any]:
        props = {f.name: self.field(f) for f in m.fields if f.name not in exclude}
        return {"type": "object", "properties": props, "additionalProperties": False}

    def field(self, f: FieldDescriptor) -> dict[str, Any]:
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            value = f.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self.scalar(value)}
        one = self.scalar(f)
        if f.is_repeated:
            return {"type": "array", "items": one}
        return one

    def scalar(self, f: FieldDescriptor) -> dict[str, Any]:
        if f.type == _FD.TYPE_MESSAGE:
            return self.message(f.message_type)
        if f.type == _FD.TYPE_ENUM:
            return self.enum(f.enum_type)
        if f.type == _FD.TYPE_BOOL:
            return {"type": "boolean"}
        if f.type == _FD.TYPE_STRING:
            return {"type": "string"}
        if f.type == _FD.TYPE_BYTES:
            return {"type": "string", "contentEncoding": "base64"}
        if f.type in _INT64:
            # Printed as strings (JavaScript numbers lose precision above 2^53); parsed from either.
            return {"type": ["string", "integer"], "pattern": r"^-?\d+$"}
        if f.type in _INT32:
            return {"type": "integer", "format": "int32"}
        return {"type": "number"}  # double, float


def _query_params(s: _Schemas, m: Descriptor, exclude: set[str]) -> list[dict[str, Any]]:
    """Fields not bound to the path or body travel in the query string (scalars only)."""
    out = []
    for f in m.fields:
        if f.name in exclude or (f.type == _FD.TYPE_MESSAGE and f.message_type.full_name not in _WELL_KNOWN):
            continue
        schema = s.field(f)
        param: dict[str, Any] = {"name": f.name, "in": "query", "required": False, "schema": schema}
        if schema.get("type") == "array":
            param.update(style="form", explode=True)
        out.append(param)
    return out


def _event_types(event: Descriptor) -> dict[str, str]:
    """The `event:` types a stream sends and what each carries: a message with a `payload`
    oneof (challenges' Event) names one type per member; others are one type."""
    oneof = event.oneofs_by_name.get("payload")
    if oneof is None:
        return {event.name.lower(): f"#/components/schemas/{event.full_name}"}
    return {f.name: f"#/components/schemas/{f.message_type.full_name}" for f in oneof.fields}


def _operation(s: _Schemas, m: catalog.Method) -> tuple[str, dict[str, Any]]:
    assert m.http_path is not None
    d = m.descriptor
    path_fields = [name for name, _ in _PARAM.findall(m.http_path)]
    path = _PARAM.sub(lambda g: "{" + g.group(1) + "}", m.http_path)
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": s.scalar(d.input_type.fields_by_name[name])}
        for name in path_fields
    ]
    op: dict[str, Any] = {
        "operationId": f"{m.service}.{m.name}",
        "tags": [m.service],
        "summary": m.name,
    }
    bound = set(path_fields)
    if m.client_streaming and d.input_type.full_name == "google.api.HttpBody":
        op["requestBody"] = {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}
    elif m.http_body == "*":
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": s.message(d.input_type, frozenset(bound))}},
        }
        bound = {f.name for f in d.input_type.fields}
    elif m.http_body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": s.field(d.input_type.fields_by_name[m.http_body])}},
        }
        bound.add(m.http_body)
    params += _query_params(s, d.input_type, bound)
    if params:
        op["parameters"] = params
    if m.sse_event:
        # Server-Sent Events (services/common/sse.py): `id:`, `event:` and one JSON message per
        # `data:` line; a heartbeat comment every 15 s; `event: end` when the stream is over.
        event = descriptor_pool.Default().FindMessageTypeByName(m.sse_event)
        ok = {
            "text/event-stream": {
                "schema": {"type": "string"},
                "x-event-schema": s.message(event),
                "x-events": _event_types(event),
            }
        }
        op["description"] = (
            "A Server-Sent Events stream: each event has `id:` (send it back as `Last-Event-ID` to "
            "resume after it), `event:` (its type) and `data:` (the JSON of "
            f"`{m.sse_event}`); `retry:` first, a heartbeat comment every 15 s, and `event: end` once "
            "the stream is over for good."
        )
    elif m.server_streaming and d.output_type.full_name == "google.api.HttpBody":
        ok = {"text/csv": {"schema": {"type": "string"}}}
    elif m.server_streaming:
        ok = {"application/json": {"schema": s.message(d.output_type)}}
    else:
        ok = {"application/json": {"schema": s.message(d.output_type)}}
    op["responses"] = {
        "200": {"description": "OK", "content": ok},
        "default": {"description": "Error", "content": {"application/json": {"schema": s.ref("google.rpc.Status")}}},
    }
    if m.access != "PUBLIC":
        op["security"] = [{"bearer": []}]
        if m.access == "ADMIN":
            op["description"] = "Administrators only."
    return path, op


def build() -> dict[str, Any]:
    s = _Schemas()
    s.components["google.rpc.Status"] = STATUS_SCHEMA
    paths: dict[str, dict[str, Any]] = {}
    for m in catalog.methods():
        if m.http_path is None or m.access in ("INTERNAL", "SERVICE_LOGIN"):
            continue  # internal methods are blocked at the edge: not part of the REST surface
        path, op = _operation(s, m)
        paths.setdefault(path, {})[m.http_verb or "get"] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "TradeSense REST API",
            "version": "v1",
            "description": "Generated from protos/ by `make protos`; served by the Envoy gateway. "
            "Money and quantities are decimal strings.",
        },
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(s.components.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


def write(path: Path = GENERATED / "openapi.json") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(build(), indent=2) + "\n")
    return path
