"""Brute-force policy: after a few free failures, lock out for a growing time."""

from __future__ import annotations

from datetime import datetime, timedelta


class ThrottlePolicy:
    def __init__(self, free_failures: int = 5, base_lock_seconds: float = 30.0, max_lock_seconds: float = 900.0):
        self.free_failures = free_failures
        self.base = base_lock_seconds
        self.max = max_lock_seconds

    def lock_after(self, failures: int, now: datetime) -> datetime | None:
        """Lock-out end after `failures` consecutive failures, or None while still free."""
        if failures < self.free_failures:
            return None
        # 30 s, 60 s, 120 s, ... capped: each failure past the threshold doubles the wait.
        seconds = min(self.base * 2 ** (failures - self.free_failures), self.max)
        return now + timedelta(seconds=seconds)
