"""Two challenges replicas split mark-to-market by leased partitions, never both judging a
partition, and one takes over the other's share when it dies."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from devstack.stack import Stack, StackConfig
from services.challenges.partitions import PARTITIONS, partition_of
from tests.conftest import Database
from tests.e2e.test_challenges import new_challenge, set_price
from tests.helpers import admin_headers, bearer, eventually, gauge, register_and_login

pytestmark = pytest.mark.integration


def owned(stack: Stack, name: str) -> int:
    return int(gauge(stack, name, "challenges_partitions_owned") or 0)


def test_two_replicas_share_and_take_over(tmp_path: Path, database: Database) -> None:
    cfg = StackConfig.ephemeral(
        tmp_path, database_url=database.create_database(), services=("auth", "market", "challenges")
    )
    samples: list[tuple[int, int]] = []
    with Stack(cfg) as stack:
        eventually(lambda: owned(stack, "challenges") == PARTITIONS, 30)
        # A second replica joins; sample both shares while they rebalance.
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                try:
                    # The joiner first: the first replica only gives partitions up here, and it
                    # stops counting them before the joiner can claim them, so a joiner's count
                    # read before the first's can never add up to more than there are.
                    joined = owned(stack, "challenges-2")
                    samples.append((owned(stack, "challenges"), joined))
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)

        stack.cfg.replicas["challenges"] = 2
        from devstack.stack import free_port

        stack.cfg.grpc_ports["challenges-2"] = free_port()
        stack.cfg.metrics_ports["challenges-2"] = free_port()
        stack.start_service("challenges-2")
        sampler = threading.Thread(target=sample)
        sampler.start()
        eventually(lambda: (owned(stack, "challenges"), owned(stack, "challenges-2")) == (8, 8), 30)
        # The sampler too has seen the joiner's share before it stops (its first reads of a
        # replica still starting can fail, and the main thread's read may be the first to see it).
        eventually(lambda: any(b > 0 for _, b in samples), 10)
        stop.set()
        sampler.join()
        # Never both at once: at every sample the two shares fit in the partitions.
        assert all(a + b <= PARTITIONS for a, b in samples), samples
        assert any(b > 0 for _, b in samples)

        client = httpx.Client(base_url=stack.gateway_url, timeout=30)
        admin = admin_headers(client, stack)
        trader = register_and_login(client)
        h = bearer(trader["access_token"])

        def open_positions() -> list[dict]:  # type: ignore[type-arg]
            set_price(client, admin, "BTCUSD", "50000.00", "50000.00")
            out: list[dict] = []  # type: ignore[type-arg]
            # Enough challenges to land in both replicas' partitions (even and odd ones).
            while len({partition_of(uuid.UUID(c["id"])) < PARTITIONS // 2 for c in out}) < 2 or len(out) < 6:
                c = new_challenge(client, trader)
                r = client.post(
                    "/api/trades",
                    json={"challenge_id": c["id"], "symbol": "BTCUSD", "side": "BUY", "quantity": "10"},
                    headers=h,
                )
                assert r.status_code == 200, r.text
                out.append(c)
            return out

        def all_failed(cs: list[dict]) -> bool:  # type: ignore[type-arg]
            return all(
                client.get(f"/api/challenges/{c['id']}", headers=h).json()["challenge"]["status"] == "FAILED"
                for c in cs
            )

        # Both alive: orders all reach the first replica (the gateway knew only it), yet the
        # second judges its half, having learned the positions from the outbox.
        first = open_positions()
        set_price(client, admin, "BTCUSD", "49400.00", "49400.00")
        eventually(lambda: all_failed(first), timeout=20)
        # Kill one replica: the other takes its share within the lease TTL and judges it all.
        second = open_positions()
        stack.kill_service("challenges-2")
        eventually(lambda: owned(stack, "challenges") == PARTITIONS, timeout=15)
        set_price(client, admin, "BTCUSD", "49400.00", "49400.00")
        eventually(lambda: all_failed(second), timeout=20)
        for c in first + second:
            assert len(client.get(f"/api/challenges/{c['id']}/breaches", headers=h).json()["breaches"]) == 1
