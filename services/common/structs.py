"""JSON objects as `google.protobuf.Struct`: an open shape in a typed message (a breach's
observed values, an alert's details, a rule pack's definition), an object on the wire."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2


def struct(d: Mapping[str, Any] | None) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    if d:
        s.update(json.loads(json.dumps(d, default=str)))  # only JSON values: Decimals and dates as text
    return s


def plain(s: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as the JSON object it came from: Struct holds every number as a double, so
    whole numbers come back as ints (a version 1, not 1.0)."""
    return dict(_plain(json_format.MessageToDict(s)))


def _plain(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v
