"""Per-user rate quotas: a token bucket per user, per process.

A trader's script can place orders or write journal notes far faster than any person; the
quota keeps one account from taking a replica's order path for itself. Buckets live in the
process (a database round trip per order would cost more than the order's own writes), so
with N replicas behind the gateway a user's ceiling is up to N times the setting: set it for
one replica's share. Refusals are RESOURCE_EXHAUSTED with a reason and a `retry-after`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from services.common.errors import ServiceError


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateQuota:
    def __init__(
        self,
        per_second: float,
        burst: int,
        reason: str,
        what: str,
        clock: Callable[[], float] = time.monotonic,
        max_users: int = 100_000,
    ) -> None:
        self.rate, self.burst = per_second, burst  # rate 0: no quota
        self.reason, self.what = reason, what
        self.clock = clock
        self.max_users = max_users
        self._buckets: dict[str, _Bucket] = {}

    def take(self, user: str) -> None:
        """Spend one token of `user`'s bucket, or refuse with how long until one is back."""
        if self.rate <= 0:
            return
        now = self.clock()
        b = self._buckets.get(user)
        if b is None:
            if len(self._buckets) >= self.max_users:
                self._forget_full(now)
            b = self._buckets[user] = _Bucket(float(self.burst), now)
        b.tokens = min(float(self.burst), b.tokens + (now - b.at) * self.rate)
        b.at = now
        if b.tokens < 1:
            wait = max(1, math.ceil((1 - b.tokens) / self.rate))
            raise ServiceError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"too many {self.what}: at most {self.burst} at once and {self.rate:g} a second; retry in {wait} s",
                reason=self.reason,
                metadata={"retry_after_seconds": str(wait), "per_second": f"{self.rate:g}", "burst": str(self.burst)},
            )
        b.tokens -= 1

    def _forget_full(self, now: float) -> None:
        """Buckets refilled to the brim hold nothing worth keeping: drop them (bounded memory)."""
        for user, b in list(self._buckets.items()):
            if b.tokens + (now - b.at) * self.rate >= self.burst:
                del self._buckets[user]
        if len(self._buckets) >= self.max_users:  # all busy: drop the oldest
            self._buckets.pop(next(iter(self._buckets)))
