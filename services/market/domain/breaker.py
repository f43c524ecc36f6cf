"""A circuit breaker: stop calling a failing provider, try again after a pause."""

from __future__ import annotations

import time
from collections.abc import Callable


class CircuitBreaker:
    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

    def __init__(
        self, failure_threshold: int = 3, reset_timeout: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self.last_error = ""

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return self.CLOSED
        if self.clock() - self.opened_at >= self.reset_timeout:
            return self.HALF_OPEN
        return self.OPEN

    def allow(self) -> bool:
        """Closed: yes. Open: no, until the pause is over; then one trial (half-open)."""
        return self.state != self.OPEN

    def record_success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self.last_error = ""

    def record_failure(self, error: str = "") -> None:
        self.failures += 1
        self.last_error = error[:200]
        if self.state == self.HALF_OPEN or self.failures >= self.failure_threshold:
            self.opened_at = self.clock()  # (re)open: the trial failed or too many failures
