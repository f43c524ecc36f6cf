"""What a price provider is: a named source of ticks for some symbols, with health."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from services.market.domain.breaker import CircuitBreaker
from services.market.domain.ticks import Tick

Emit = Callable[[Tick], None]


class Provider(Protocol):
    name: str
    symbols: frozenset[str]
    breaker: CircuitBreaker
    last_tick_at: datetime | None

    async def run(self, emit: Emit) -> None:
        """Produce ticks until cancelled; failures are recorded on the breaker."""
        ...

    def detail(self) -> str: ...
