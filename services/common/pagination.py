"""Signed page tokens and page-size limits for every list RPC.

A page token is the list's position (a small JSON object) and an HMAC of it, so the server
only ever reads back positions it issued: a client cannot hand a list `{"n": -1}` or
`{"o": [1]}`. The key is the service's PAGE_TOKEN_SECRET, shared by its replicas (any one
replica reads another's tokens); without one a process draws its own at start-up, which is
right for one process and a test, and makes tokens from another replica invalid.
Values are still checked for type and range on the way out of a token (`Page.offset`,
`Page.text`, `time_id_cursor`), so a leaked key cannot reach SQL with nonsense either.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from services.common.errors import invalid_argument

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_TOKEN = 1024  # characters: far more than any position we issue
MAX_OFFSET = 10_000_000
_SIG_BYTES = 16

_key = secrets.token_bytes(32)


def configure(secret: str) -> None:
    """Sign and check tokens with `secret` (every replica of a service uses the same one)."""
    global _key
    if secret:
        _key = hashlib.sha256(b"tradesense page tokens\0" + secret.encode()).digest()


def _bad() -> Exception:
    return invalid_argument({"page_token": "not a token this API issued"})


@dataclass(frozen=True)
class Page:
    size: int
    cursor: dict[str, Any] | None

    def offset(self, key: str) -> int:
        """A non-negative position the token holds under `key` (0 on the first page)."""
        value = (self.cursor or {}).get(key, 0)
        if type(value) is not int or not 0 <= value <= MAX_OFFSET:
            raise _bad()
        return value

    def cut(self, rows: Sequence[T]) -> tuple[list[T], bool]:
        """A page's rows out of `size + 1` fetched, and whether there are more after them."""
        return list(rows[: self.size]), len(rows) > self.size

    def text(self, key: str) -> str | None:
        """A short string position the token holds under `key` (None on the first page)."""
        if not self.cursor:
            return None
        value = self.cursor.get(key)
        if not isinstance(value, str) or len(value) > 256:
            raise _bad()
        return value


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode() + b"=" * (-len(text) % 4))


def _sign(payload: str) -> str:
    return _b64(hmac.new(_key, payload.encode(), hashlib.sha256).digest()[:_SIG_BYTES])


def parse(page_size: int, page_token: str, *, default: int = DEFAULT_PAGE_SIZE) -> Page:
    if page_size < 0:
        raise invalid_argument({"page_size": "must not be negative"})
    size = min(page_size or default, MAX_PAGE_SIZE)
    if not page_token:
        return Page(size, None)
    payload, dot, sig = page_token.partition(".")
    if len(page_token) > MAX_TOKEN or not dot or not hmac.compare_digest(sig.encode(), _sign(payload).encode()):
        raise _bad()
    try:
        cursor = json.loads(_unb64(payload))
    except (ValueError, binascii.Error):
        raise _bad() from None
    if not isinstance(cursor, dict):
        raise _bad()
    return Page(size, cursor)


def token(cursor: dict[str, Any] | None) -> str:
    if cursor is None:
        return ""
    payload = _b64(json.dumps(cursor, separators=(",", ":"), default=str).encode())
    return f"{payload}.{_sign(payload)}"


def time_id_cursor(page: Page) -> tuple[datetime, uuid.UUID] | None:
    """The (time, id) keyset position a `time_id_token` encoded, for lists ordered by both."""
    if not page.cursor:
        return None
    try:
        return datetime.fromisoformat(page.cursor["t"]), uuid.UUID(page.cursor["id"])
    except (KeyError, ValueError, TypeError, AttributeError):
        raise _bad() from None


def time_id_token(rows: Sequence[Mapping[Any, Any]], time_key: str, more: bool) -> str:
    """The next page's token after the last of `rows`, or "" on the last page."""
    if not more or not rows:
        return ""
    return token({"t": rows[-1][time_key].isoformat(), "id": str(rows[-1]["id"])})
