"""Open streams per user, per process: one trader's tabs and scripts cannot hold every
connection and database poll a replica has (150 streams of one trader took the database
from 12 to 313 transactions a second). Services calling each other are not counted."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from services.common.errors import ServiceError
from services.common.identity import Caller


class StreamLimits:
    def __init__(self, per_user: int) -> None:
        self.per_user = per_user  # 0: no limit
        self.open: dict[str, int] = {}

    @contextmanager
    def hold(self, caller: Caller) -> Iterator[None]:
        if not self.per_user or caller.role == "service":
            yield
            return
        held = self.open.get(caller.user_id, 0)
        if held >= self.per_user:
            raise ServiceError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"at most {self.per_user} open streams per user; close one first",
                reason="TOO_MANY_STREAMS",
                metadata={"limit": str(self.per_user)},
            )
        self.open[caller.user_id] = held + 1
        try:
            yield
        finally:
            left = self.open[caller.user_id] - 1
            if left:
                self.open[caller.user_id] = left
            else:
                del self.open[caller.user_id]
