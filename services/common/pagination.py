"""Opaque page tokens and page-size limits for every list RPC."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.common.errors import invalid_argument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class Page:
    size: int
    cursor: dict[str, Any] | None


def parse(page_size: int, page_token: str, *, default: int = DEFAULT_PAGE_SIZE) -> Page:
    if page_size < 0:
        raise invalid_argument({"page_size": "must not be negative"})
    size = min(page_size or default, MAX_PAGE_SIZE)
    if not page_token:
        return Page(size, None)
    try:
        raw = base64.urlsafe_b64decode(page_token.encode() + b"=" * (-len(page_token) % 4))
        cursor = json.loads(raw)
        if not isinstance(cursor, dict):
            raise ValueError
    except ValueError:
        raise invalid_argument({"page_token": "not a token this API issued"}) from None
    return Page(size, cursor)


def token(cursor: dict[str, Any] | None) -> str:
    if cursor is None:
        return ""
    raw = json.dumps(cursor, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def time_id_cursor(page: Page) -> tuple[datetime, uuid.UUID] | None:
    """The (time, id) keyset position a `time_id_token` encoded, for lists ordered by both."""
    if not page.cursor:
        return None
    try:
        return datetime.fromisoformat(page.cursor["t"]), uuid.UUID(page.cursor["id"])
    except (KeyError, ValueError, TypeError):
        raise invalid_argument({"page_token": "not a token this API issued"}) from None


def time_id_token(rows: Sequence[Mapping[Any, Any]], time_key: str, more: bool) -> str:
    """The next page's token after the last of `rows`, or "" on the last page."""
    if not more or not rows:
        return ""
    return token({"t": rows[-1][time_key].isoformat(), "id": str(rows[-1]["id"])})
