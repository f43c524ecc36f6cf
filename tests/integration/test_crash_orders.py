"""kill -9 each service in turn while traders keep placing orders, retrying with the same
idempotency key until an answer. Afterwards every acknowledged order exists exactly once,
nothing unacknowledged slipped in twice, and each balance equals a recomputation from its
persisted fills; a PostgreSQL restart under the same load is survived the same way."""

from __future__ import annotations

import itertools
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.stack import Stack, StackConfig
from services.challenges.domain.positions import ZERO, Position, apply_fill
from tests.e2e.test_challenges import new_challenge
from tests.helpers import admin_headers, bearer, register_and_login

pytestmark = pytest.mark.integration

TRADERS = 2
PRICES = ["50000.00", "50040.00", "49980.00", "50110.00"]


class Trader(threading.Thread):
    """Sequential market orders on one challenge; each retried with its key until answered."""

    def __init__(self, url: str, token: str, challenge_id: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=url, timeout=5, headers=bearer(token))
        self.challenge_id = challenge_id
        self.stop_event = stop
        self.acked: dict[str, str] = {}  # idempotency key -> trade id
        self.retries = 0
        self.refused: list[str] = []

    def place(self, key: str, side: str) -> None:
        body = {"challenge_id": self.challenge_id, "symbol": "BTCUSD", "side": side, "quantity": "0.01"}
        while True:  # a client that never gives up on an order it sent
            try:
                r = self.client.post("/api/trades", json={**body, "idempotency_key": key})
            except httpx.HTTPError:
                r = None
            if r is not None and r.status_code == 200:
                self.acked[key] = r.json()["id"]
                return
            if r is not None and r.status_code == 400 and "STALE_QUOTE" in r.text:
                self.retries += 1  # the market was down long enough for the quote to age: retryable
            elif r is not None and r.status_code < 500 and r.status_code != 429:
                self.refused.append(r.text)  # a definitive refusal would be a bug here
                return
            else:
                self.retries += 1
            time.sleep(0.05)

    def run(self) -> None:
        for i in itertools.count():
            if self.stop_event.is_set():
                return
            self.place(f"{self.challenge_id}-{i}", "BUY" if i % 2 == 0 else "SELL")


def _all_trades(c: httpx.Client, h: dict[str, str], cid: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    token = ""
    while True:
        params = {"challenge_id": cid, "order": "ASC", "page_size": "200", "page_token": token}
        page = c.get("/api/trades", params=params, headers=h).json()
        out += page["trades"]
        token = page.get("next_page_token", "")
        if not token:
            return out


def _recompute(trades: list[dict[str, Any]], initial: Decimal, contract_size: Decimal) -> tuple[Decimal, Decimal]:
    """Balance and position from the fills alone, with the domain's P&L arithmetic."""
    pos = Position("BTCUSD", ZERO, ZERO)
    balance = initial
    for t in trades:
        signed = Decimal(t["quantity"]) * (1 if t["side"] == "BUY" else -1)
        result = apply_fill(pos, signed, Decimal(t["price"]), contract_size)
        assert result.realized == Decimal(t["realized_pnl"]), t  # each fill's stored P&L is right
        balance += result.realized - Decimal(t["commission"])
        pos = result.position
    return balance, pos.quantity


def test_kill_9_each_service_and_restart_postgres_under_orders(tmp_path: Path) -> None:
    cfg = StackConfig.ephemeral(tmp_path, services=("auth", "market", "challenges", "risk"))  # its own PostgreSQL
    with Stack(cfg) as stack:
        c = httpx.Client(base_url=stack.gateway_url, timeout=20)
        admin = admin_headers(c, stack)

        def set_price(p: str) -> None:
            c.post("/api/market/admin/prices/BTCUSD", json={"bid": p, "ask": p}, headers=admin)

        set_price(PRICES[0])
        accounts = []
        for _ in range(TRADERS):
            t = register_and_login(c)
            accounts.append((t, new_challenge(c, t)))
        stop = threading.Event()
        traders = [Trader(stack.gateway_url, t["access_token"], ch["id"], stop) for t, ch in accounts]
        for tr in traders:
            tr.start()

        def flowing(seconds: float) -> None:
            """Orders keep flowing and the price keeps moving (so fills realise P&L)."""
            end = time.monotonic() + seconds
            for p in itertools.cycle(PRICES):
                if time.monotonic() > end:
                    return
                try:
                    set_price(p)
                except httpx.HTTPError:
                    pass  # market is the one down right now
                time.sleep(0.25)

        flowing(1.5)
        for service in ("challenges", "market", "auth", "risk"):
            stack.kill_service(service)
            flowing(1.0)
            stack.start_service(service)
            flowing(1.5)
        assert stack.pg is not None
        stack.pg.stop()
        flowing(1.0)
        stack.pg.start(tmp_path / "logs" / "postgres-2.log")
        flowing(3.0)
        stop.set()
        for tr in traders:
            tr.join(timeout=60)
            assert not tr.is_alive(), "an order never got an answer"

        spec = c.get("/api/market/symbols/BTCUSD").json()
        contract_size = Decimal(spec["instrument"]["contract_size"])
        for (t, ch), tr in zip(accounts, traders, strict=True):
            h = bearer(t["access_token"])
            assert not tr.refused, tr.refused
            assert len(tr.acked) > 10  # orders really flowed through every fault
            trades = _all_trades(c, h, ch["id"])
            ids = [x["id"] for x in trades]
            assert len(ids) == len(set(ids))
            # Every acknowledged order exists exactly once, and nothing else was filled: a retry
            # of an order that committed before the crash returned the first fill.
            assert sorted(ids) == sorted(tr.acked.values())
            detail = c.get(f"/api/challenges/{ch['id']}", headers=h).json()["challenge"]
            balance, quantity = _recompute(trades, Decimal(detail["initial_balance"]), contract_size)
            assert Decimal(detail["balance"]) == balance
            positions = c.get(f"/api/challenges/{ch['id']}/positions", headers=h).json()["positions"]
            held = sum((Decimal(p["quantity"]) for p in positions if p["symbol"] == "BTCUSD"), ZERO)
            assert held == quantity
        assert all(p.poll() is None for p in stack.procs.values())
        print("orders acknowledged:", [len(tr.acked) for tr in traders], "retries:", [tr.retries for tr in traders])
