"""Open streams per caller, per process.

A user's tabs and scripts cannot hold every connection and database poll a replica has (150
streams of one trader took the database from 12 to 313 transactions a second): at most
`per_user` each. Anonymous streams (public prices) are held to `per_address` per client
address and `anonymous_total` in all: at ≈50 µs of market CPU per message per stream, a
thousand of them from anywhere would otherwise starve the feed every order is priced from.
Services calling each other are not counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from services.common.errors import ServiceError
from services.common.identity import Caller


def _refused(message: str, reason: str, limit: int) -> ServiceError:
    return ServiceError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        message,
        reason=reason,
        metadata={"limit": str(limit), "retry_after_seconds": "5"},
    )


class StreamLimits:
    def __init__(self, per_user: int, per_address: int = 0, anonymous_total: int = 0) -> None:
        self.per_user = per_user  # 0: no limit (each of the three)
        self.per_address = per_address
        self.anonymous_total = anonymous_total
        self.open: dict[str, int] = {}
        self.anonymous = 0

    @contextmanager
    def hold(self, caller: Caller | None, address: str = "") -> Iterator[None]:
        if caller is None:
            with self._anonymous(address):
                yield
            return
        if not self.per_user or caller.role == "service":
            yield
            return
        if self.open.get(caller.user_id, 0) >= self.per_user:
            raise _refused(
                f"at most {self.per_user} open streams per user; close one first", "TOO_MANY_STREAMS", self.per_user
            )
        with self._counted(caller.user_id):
            yield

    @contextmanager
    def _anonymous(self, address: str) -> Iterator[None]:
        if self.anonymous_total and self.anonymous >= self.anonymous_total:
            raise _refused(
                "this server holds all the anonymous streams it can; sign in, or retry later",
                "TOO_MANY_ANONYMOUS_STREAMS",
                self.anonymous_total,
            )
        key = "addr:" + address
        if self.per_address and self.open.get(key, 0) >= self.per_address:
            raise _refused(
                f"at most {self.per_address} anonymous streams per client address; close one or sign in",
                "TOO_MANY_STREAMS_FROM_ADDRESS",
                self.per_address,
            )
        self.anonymous += 1
        try:
            with self._counted(key):
                yield
        finally:
            self.anonymous -= 1

    @contextmanager
    def _counted(self, key: str) -> Iterator[None]:
        self.open[key] = self.open.get(key, 0) + 1
        try:
            yield
        finally:
            left = self.open[key] - 1
            if left:
                self.open[key] = left
            else:
                del self.open[key]
