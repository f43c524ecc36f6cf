"""Ids arriving in requests."""

from __future__ import annotations

import uuid

from services.common.errors import invalid_argument


def parse_uuid(value: str, field: str) -> uuid.UUID:
    """A UUID, or INVALID_ARGUMENT naming the field."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise invalid_argument({field: "must be a UUID"}) from None
