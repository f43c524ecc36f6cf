"""A challenge's Session rebuilt from its stored row and positions, with the current quotes."""

from __future__ import annotations

import uuid
from collections import ChainMap
from collections.abc import Mapping
from typing import Any, cast

from services.challenges.domain.engine import Account
from services.challenges.domain.positions import Position
from services.challenges.domain.rulepacks import Rules
from services.challenges.domain.session import Quote, Session, Stops
from services.challenges.prices import MarketView

# Distinct rule sets a process keeps built (see `States.session`).
RULES_CACHE = 10_000


class States:
    def __init__(self, market: MarketView) -> None:
        self.market = market
        self._rules: dict[str | uuid.UUID, Rules] = {}

    def rules(self, row: Mapping[Any, Any]) -> Rules:
        # A challenge's rules never change once copied, and every challenge of one program and
        # size has the same copy: built once per distinct text (building validates every
        # parameter, ~30 µs, and Rules are immutable, so challenges share them). A row read
        # through SQLAlchemy has them decoded; those are keyed by the challenge.
        raw = row["rules"]
        key = raw if isinstance(raw, str) else row["id"]
        rules = self._rules.get(key)
        if rules is None:
            if len(self._rules) >= RULES_CACHE:
                self._rules.clear()
            rules = self._rules[key] = Rules.from_json(raw)
        return rules

    def session(self, row: Mapping[Any, Any], pos_rows: list[Any]) -> Session:
        rules = self.rules(row)
        account = Account.from_json(row["account"])
        positions = {p["symbol"]: Position(p["symbol"], p["quantity"], p["avg_price"]) for p in pos_rows}
        stops = {
            p["symbol"]: Stops(p["stop_loss"], p["take_profit"])
            for p in pos_rows
            if p["stop_loss"] is not None or p["take_profit"] is not None
        }
        return Session(rules, account, self.market.specs, positions, stops, self.quotes())

    def quotes(self) -> ChainMap[str, Quote]:
        # Reads fall through to the live quotes (no copy of every symbol per order); a tick the
        # session applies lands in the front map, never in the shared one.
        return ChainMap({}, cast(dict[str, Quote], self.market.quotes))

    def refresh(self, session: Session) -> None:
        """A cached session's quotes and specs: today's, not those of the order that cached it."""
        session.quotes, session.specs = self.quotes(), self.market.specs
