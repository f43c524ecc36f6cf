"""A challenge's statuses."""

from __future__ import annotations

PENDING, ACTIVE, PAUSED, PASSED, FUNDED, FAILED, CANCELLED = (
    "PENDING",
    "ACTIVE",
    "PAUSED",
    "PASSED",
    "FUNDED",
    "FAILED",
    "CANCELLED",
)
TRADING = (ACTIVE,)
ENDED = (PASSED, FUNDED, FAILED, CANCELLED)
