"""Slots for heavy work a caller holds for a while (an export being read, an upload being
parsed): at most `per_user` at a time per user and `total` per process, refused at once past
either (RESOURCE_EXHAUSTED with a reason), never queued — a queue would hold the caller's
connection and memory anyway."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from services.common.errors import ServiceError


class Slots:
    def __init__(self, what: str, reason: str, per_user: int = 1, total: int = 4) -> None:
        self.what, self.reason = what, reason
        self.per_user, self.total = per_user, total
        self.held: dict[str, int] = {}

    @property
    def in_use(self) -> int:
        return sum(self.held.values())

    @contextmanager
    def hold(self, user: str, per_user: bool = True) -> Iterator[None]:
        """`per_user` False: only the process's total applies (a service's workers)."""
        if per_user and self.held.get(user, 0) >= self.per_user:
            raise self._refused(f"at most {self.per_user} {self.what} at a time per user; wait for yours to finish")
        if self.in_use >= self.total:
            raise self._refused(f"this server runs as many {self.what} as it can; retry shortly")
        self.held[user] = self.held.get(user, 0) + 1
        try:
            yield
        finally:
            self.held[user] -= 1
            if not self.held[user]:
                del self.held[user]

    def _refused(self, message: str) -> ServiceError:
        return ServiceError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            message,
            reason=self.reason,
            metadata={"per_user": str(self.per_user), "total": str(self.total), "retry_after_seconds": "5"},
        )
