"""Faults: a stalled price feed refuses fills; a PostgreSQL restart is survived without
restarting any service."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from devstack.stack import Stack, StackConfig
from tests.conftest import Database
from tests.e2e.test_challenges import new_challenge
from tests.helpers import admin_headers, bearer, eventually, register_and_login
from tests.integration.test_market_live_failover import FakeExchange

pytestmark = pytest.mark.integration


def _reason(r: httpx.Response) -> str | None:
    for d in r.json().get("details", []):
        if d.get("@type", "").endswith("ErrorInfo"):
            return str(d["reason"])
    return None


def test_stalled_feed_refuses_fills_and_shows_in_health(tmp_path: Path, database: Database) -> None:
    from devstack.stack import free_port

    exchange = FakeExchange(free_port())
    exchange.start()
    cfg = StackConfig.ephemeral(
        tmp_path,
        database_url=database.create_database(),
        services=("auth", "market", "challenges"),
        env={
            "MARKET_LIVE_URL": f"http://127.0.0.1:{exchange.port}",
            "MARKET_LIVE_INTERVAL": "0.2",
            "MARKET_REPLAY": "false",
            "MARKET_SIMULATED": "false",
            "MARKET_STALE_AFTER_SECONDS": "1.5",
        },
    )
    with Stack(cfg) as stack:
        c = httpx.Client(base_url=stack.gateway_url, timeout=20)
        trader = register_and_login(c)
        h = bearer(trader["access_token"])
        ch = new_challenge(c, trader)
        order = {"challenge_id": ch["id"], "symbol": "BTCUSD", "side": "BUY", "quantity": "0.01"}
        eventually(lambda: c.post("/api/trades", json=order, headers=h).status_code == 200, 30)  # live fills
        exchange.stop()  # the only source of BTCUSD prices stalls
        r = eventually(lambda: (x := c.post("/api/trades", json=order, headers=h)).status_code != 200 and x, 30)
        assert r.status_code == 400 and _reason(r) == "STALE_QUOTE", r.text
        health = {p["name"]: p for p in c.get("/api/market/health").json()["providers"]}
        assert health["live"]["healthy"] is False


def test_services_survive_a_postgres_restart(tmp_path: Path) -> None:
    cfg = StackConfig.ephemeral(tmp_path, services=("auth", "market", "challenges"))  # its own PostgreSQL
    with Stack(cfg) as stack:
        c = httpx.Client(base_url=stack.gateway_url, timeout=20)
        admin = admin_headers(c, stack)
        c.post("/api/market/admin/prices/BTCUSD", json={"bid": "50000", "ask": "50000"}, headers=admin)
        trader = register_and_login(c)
        h = bearer(trader["access_token"])
        ch = new_challenge(c, trader)

        def order(i: int) -> httpx.Response:
            return c.post(
                "/api/trades",
                json={
                    "challenge_id": ch["id"],
                    "symbol": "BTCUSD",
                    "side": "BUY",
                    "quantity": "0.01",
                    "idempotency_key": f"o{i}",
                },
                headers=h,
            )

        assert order(0).status_code == 200
        assert stack.pg is not None
        stack.pg.stop()
        during = order(1)
        assert during.status_code == 503, during.text  # retryable, not a 500
        stack.pg.start(tmp_path / "logs" / "postgres-2.log")
        # Same processes, no restart: a retry with the same key succeeds once the pool reconnects.
        r = eventually(lambda: (x := order(1)).status_code == 200 and x, timeout=30)
        assert r.status_code == 200
        assert all(p.poll() is None for p in stack.procs.values())
        trades = c.get("/api/trades", params={"challenge_id": ch["id"]}, headers=h).json()["trades"]
        assert len(trades) == 2  # the failed attempt left nothing; the retry filled once
