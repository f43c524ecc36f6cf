"""Opaque page tokens and page-size limits for every list RPC."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
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
