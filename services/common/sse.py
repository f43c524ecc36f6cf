"""Server-Sent Events for browsers, written by the service as a `google.api.HttpBody` stream.

Envoy's transcoder passes an HttpBody stream through as it comes (with the first message's
content type), so the service writes the event-stream format itself: a `retry:` hint first;
then each event with `id:` (its position in the stream, which the browser sends back as the
`Last-Event-ID` header when it reconnects) and `event:` (its type, so `addEventListener(type)`
works); a comment line every `HEARTBEAT` seconds so that neither the gateway's idle timeout
nor any proxy between cuts a quiet stream; and a last `event: end` when the stream is over
for good (an ended challenge), which a client closes on. Data is the typed message's proto3
JSON, printed as the transcoder prints unary answers (proto field names, every field).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from google.api import httpbody_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from services.common.errors import invalid_argument
from services.common.rpc import Context

CONTENT_TYPE = "text/event-stream"
HEARTBEAT = 15.0  # seconds between comments on a quiet stream
RETRY_MS = 3000  # how soon a browser reconnects after a drop


@dataclass(frozen=True)
class Event:
    event: str  # the SSE event type
    data: Message | None  # None: no data line (the `end` marker)
    id: int | None = None  # the position a reconnect resumes after


END = Event("end", None)


def to_json(message: Message) -> str:
    return json_format.MessageToJson(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
        indent=None,
        ensure_ascii=False,
    )


def frame(e: Event) -> bytes:
    lines = []
    if e.id is not None:
        lines.append(f"id: {e.id}")
    lines.append(f"event: {e.event}")
    lines.append(f"data: {to_json(e.data) if e.data is not None else '{}'}")
    return ("\n".join(lines) + "\n\n").encode()


def resume_after(context: Context, after: int) -> int:
    """Where a stream starts: after the `Last-Event-ID` a reconnecting browser sends (a
    header, which reaches the service as metadata), or after the request's own cursor,
    whichever is further."""
    for key, value in context.invocation_metadata() or ():
        if key == "last-event-id" and value.strip():
            if not value.strip().isdigit():
                raise invalid_argument({"Last-Event-ID": "must be an event id this stream sent"})
            return max(after, int(value.strip()))
    return after


def _body(data: bytes) -> httpbody_pb2.HttpBody:
    return httpbody_pb2.HttpBody(content_type=CONTENT_TYPE, data=data)


def framed(e: Event) -> httpbody_pb2.HttpBody:
    """An event's message, ready to send: what many streams carry alike (a tick's price) is
    framed once and handed to each of them as it is."""
    return _body(frame(e))


async def stream(
    events: AsyncIterator[Event | httpbody_pb2.HttpBody], heartbeat: float = HEARTBEAT
) -> AsyncIterator[httpbody_pb2.HttpBody]:
    """The event-stream bytes of `events` (events, or messages `framed` already), with a
    heartbeat comment whenever `heartbeat` seconds pass without one; ends after `END` or when
    `events` does."""
    yield _body(f"retry: {RETRY_MS}\n\n".encode())
    source = aiter(events)
    pending: asyncio.Future[Event | httpbody_pb2.HttpBody] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(source))
            done, _ = await asyncio.wait({pending}, timeout=heartbeat)
            if not done:
                yield _body(b": heartbeat\n\n")
                continue
            try:
                e = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield e if isinstance(e, httpbody_pb2.HttpBody) else _body(frame(e))
            if e is END:
                return
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
        close = getattr(source, "aclose", None)
        if close is not None:
            await close()  # the source's own clean-up (a subscription given back) runs now
