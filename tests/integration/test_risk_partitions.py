"""Two risk replicas split the event feed by leased partitions (issue 18): killed mid-stream,
the survivor takes the dead one's partitions over and, in the end, every challenge's fills and
state in risk match what challenges recorded — nothing counted twice, nothing skipped."""

from __future__ import annotations

import asyncio
import random
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from devstack.stack import Stack, StackConfig, free_port
from tests.conftest import Database
from tests.e2e.test_challenges import new_challenge, set_price
from tests.helpers import admin_headers, bearer, eventually, gauge, register_and_login

pytestmark = pytest.mark.integration


def owned(stack: Stack, name: str) -> int:
    try:
        return int(gauge(stack, name, "risk_partitions_owned") or 0)
    except httpx.HTTPError:
        return -1


async def _compare(url: str, ids: list[uuid.UUID]) -> tuple[dict, dict]:
    conn = await asyncpg.connect(url)
    try:
        trades = await conn.fetch(
            "SELECT challenge_id, count(*) AS n, min(c.balance) AS balance FROM challenges.trades t "
            "JOIN challenges.challenges c ON c.id = t.challenge_id WHERE challenge_id = ANY($1::uuid[]) "
            "GROUP BY challenge_id",
            ids,
        )
        seen = await conn.fetch(
            "SELECT s.challenge_id, s.trades_today, s.balance, (SELECT count(*) FROM risk.fills f "
            "WHERE f.challenge_id = s.challenge_id) AS fills FROM risk.challenge_state s "
            "WHERE s.challenge_id = ANY($1::uuid[])",
            ids,
        )
    finally:
        await conn.close()
    want = {r["challenge_id"]: (r["n"], r["n"], r["balance"]) for r in trades}
    got = {r["challenge_id"]: (r["fills"], r["trades_today"], r["balance"]) for r in seen}
    return want, got


def test_a_killed_risk_replica_loses_nothing_and_doubles_nothing(tmp_path: Path, database: Database) -> None:
    url = database.create_database()
    cfg = StackConfig.ephemeral(tmp_path, database_url=url, replicas={"risk": 2})
    cfg.grpc_ports["risk-2"], cfg.metrics_ports["risk-2"] = free_port(), free_port()
    with Stack(cfg) as stack, httpx.Client(base_url=stack.gateway_url, timeout=15) as c:
        eventually(lambda: (owned(stack, "risk"), owned(stack, "risk-2")) == (8, 8), 30)
        admin = admin_headers(c, stack)
        # A day that cannot roll during the test: the reset twelve hours away, in UTC.
        reset = (datetime.now(UTC) + timedelta(hours=12)).time().replace(microsecond=0).isoformat()
        pack = {
            "id": "e2e-risk-split",
            "version": 1,
            "name": "Risk split (tests)",
            "timezone": "UTC",
            "reset_time": reset,
            "phases": [{"rules": [{"kind": "max_loss", "params": {"pct": "50"}}]}],
        }
        assert c.post("/api/rule-packs", json={"definition": pack}, headers=admin).status_code == 200
        plan = {"id": "e2e-risk-split", "rule_pack": "e2e-risk-split", "rule_pack_version": 1, "phase": 1}
        assert c.post("/api/plans", json={**plan, "account_sizes": ["10000.00"]}, headers=admin).status_code == 200
        set_price(c, admin, "ETHUSD", "3000.00", "3000.50")
        accounts = []
        for _ in range(4):
            me = register_and_login(c)
            for _ in range(3):  # 12 challenges: both replicas' partitions get some
                accounts.append((new_challenge(c, me, plan="e2e-risk-split", size="10000.00")["id"], me))
        ids = [uuid.UUID(cid) for cid, _ in accounts]

        done = threading.Event()
        placed = []

        def trade() -> None:
            rng = random.Random(7)
            with httpx.Client(base_url=stack.gateway_url, timeout=15) as t:
                while not done.is_set():
                    cid, me = rng.choice(accounts)
                    side = rng.choice(["BUY", "SELL"])
                    body = {"challenge_id": cid, "symbol": "ETHUSD", "side": side, "quantity": "0.1"}
                    r = t.post("/api/trades", json=body, headers=bearer(me["access_token"]))
                    placed.append(r.status_code)

        trader = threading.Thread(target=trade)
        trader.start()
        eventually(lambda: len(placed) >= 60, 30)
        stack.kill_service("risk-2")  # mid-stream, its last run perhaps half applied
        eventually(lambda: owned(stack, "risk") == 16, 15)  # within the lease TTL
        eventually(lambda: len(placed) >= 160, 60)
        done.set()
        trader.join()
        assert placed.count(200) >= 150, set(placed)

        def caught_up() -> bool:
            want, got = asyncio.run(_compare(url, ids))
            return want == got and len(want) == len(ids)

        try:
            eventually(caught_up, 30, 0.5)
        except AssertionError:
            want, got = asyncio.run(_compare(url, ids))
            wrong = {str(k): (want.get(k), got.get(k)) for k in ids if want.get(k) != got.get(k)}
            raise AssertionError(wrong) from None
