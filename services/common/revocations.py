"""Access tokens that stop working before they expire, in every service within seconds.

An access token is verified by signature alone, so logging out, disabling an account,
demoting it or changing its password used to leave its tokens working for up to their 15
minutes. Auth now records a cut-off per user or per session (refresh family) and serves the
list (ListTokenCutoffs, INTERNAL); every service follows it — one call a second, nothing per
request — and refuses a token issued before its user's or its session's cut-off. Open
streams of a cut-off user end too (`watch`).

While auth cannot be reached the list stays as it was: tokens already cut off stay refused,
and a cut-off made meanwhile takes effect once auth answers again (logged).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager

import structlog

from services.common.identity import Caller

log = structlog.get_logger("revocations")

# (sequence, subject, not_before_ms) of cut-offs after a cursor.
Fetch = Callable[[int], Awaitable[list[tuple[int, str, int]]]]


class Revocations:
    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.cursor = 0
        self._not_before: dict[str, int] = {}  # subject -> Unix ms
        self._watchers: dict[str, set[asyncio.Event]] = {}

    @staticmethod
    def subjects(caller: Caller) -> tuple[str, ...]:
        return (
            (f"user:{caller.user_id}", f"session:{caller.session_id}")
            if caller.session_id
            else (f"user:{caller.user_id}",)
        )

    def revoked(self, caller: Caller) -> bool:
        return any(caller.issued_ms < self._not_before.get(s, 0) for s in self.subjects(caller))

    def apply(self, cutoffs: Iterable[tuple[int, str, int]]) -> None:
        for sequence, subject, not_before in cutoffs:
            self.cursor = max(self.cursor, sequence)
            if not_before > self._not_before.get(subject, 0):
                self._not_before[subject] = not_before
                for event in self._watchers.get(subject, ()):
                    event.set()

    @contextmanager
    def watch(self, caller: Caller) -> Iterator[asyncio.Event]:
        """An event set when `caller`'s token is cut off (for a stream to end on)."""
        event = asyncio.Event()
        if self.revoked(caller):
            event.set()
        subjects = self.subjects(caller)
        for s in subjects:
            self._watchers.setdefault(s, set()).add(event)
        try:
            yield event
        finally:
            for s in subjects:
                watchers = self._watchers.get(s)
                if watchers is not None:
                    watchers.discard(event)
                    if not watchers:
                        del self._watchers[s]

    def forget_before(self, ms: int) -> None:
        """Drop cut-offs no unexpired token can be issued before (older than a token's life)."""
        self._not_before = {s: t for s, t in self._not_before.items() if t >= ms}

    async def follow(self, fetch: Fetch, max_token_age_ms: int, clock: Callable[[], float]) -> None:
        failing = False
        while True:
            try:
                while True:
                    batch = await fetch(self.cursor)
                    self.apply(batch)
                    if len(batch) < 1000:
                        break
                if failing:
                    log.info("token cut-offs followed again", cursor=self.cursor)
                failing = False
                self.forget_before(int(clock() * 1000) - max_token_age_ms)
            except Exception as exc:  # auth restarting: keep what we know, try again
                if not failing:
                    log.warning("cannot read token cut-offs", error=type(exc).__name__)
                failing = True
            await asyncio.sleep(self.interval)
