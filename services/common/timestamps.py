"""datetime → google.protobuf.Timestamp, the one conversion every servicer uses."""

from __future__ import annotations

from datetime import datetime
from typing import overload

from google.protobuf.timestamp_pb2 import Timestamp


@overload
def timestamp(dt: datetime) -> Timestamp: ...
@overload
def timestamp(dt: None) -> None: ...
def timestamp(dt: datetime | None) -> Timestamp | None:
    """The instant as a Timestamp (None stays None: an unset field)."""
    if dt is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(dt)
    return ts
