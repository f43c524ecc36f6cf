"""What this process has committed: the last outbox sequence per challenge (the outbox follower
skips what it wrote itself) and a wake-up for the event streams waiting on new rows."""

from __future__ import annotations

import asyncio
import uuid

from prometheus_client import Gauge

LAST_EVENT = Gauge("challenges_events_last_sequence", "Highest outbox sequence this process has committed.")


class Commits:
    def __init__(self) -> None:
        self.local_seq: dict[uuid.UUID, int] = {}
        self.new_events = asyncio.Event()

    def wrote(self, cid: uuid.UUID, last: int | None) -> None:
        if last is not None:
            LAST_EVENT.set(max(last, LAST_EVENT._value.get()))
            self.local_seq[cid] = last

    def mine(self, cid: uuid.UUID, sequence: int) -> bool:
        """Whether outbox row `sequence` of `cid` is one this process committed (or older)."""
        return sequence <= self.local_seq.get(cid, 0)

    def committed(self) -> None:
        """Wake every stream waiting for outbox rows, and arm a fresh event for the next ones."""
        self.new_events.set()
        self.new_events = asyncio.Event()
