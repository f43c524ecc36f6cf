"""SIGTERM: health goes NOT_SERVING, in-flight calls finish, the process exits cleanly."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tradesense.market.v1 import market_pb2, market_pb2_grpc

from devstack.stack import Stack, StackConfig
from tests.conftest import Database

pytestmark = pytest.mark.integration


def test_sigterm_drains(tmp_path: Path, database: Database) -> None:
    cfg = StackConfig.ephemeral(
        tmp_path,
        database_url=database.create_database(),
        services=("auth", "market"),
        with_gateway=False,
        # Open streams (the health Watch below) hold the stop for the whole grace period.
        env={"SHUTDOWN_DRAIN_SECONDS": "1.0", "SHUTDOWN_GRACE_SECONDS": "3"},
    )
    with Stack(cfg) as stack:
        proc = stack.procs["market"]
        statuses: list[int] = []
        with grpc.insecure_channel(stack.grpc_addr("market")) as ch:
            health = health_pb2_grpc.HealthStub(ch)
            market = market_pb2_grpc.MarketServiceStub(ch)
            # An in-flight unary call started just before SIGTERM still completes.
            fut = market.ListSymbols.future(market_pb2.ListSymbolsRequest(page_size=5), timeout=10)

            def watch() -> None:
                try:
                    for r in health.Watch(health_pb2.HealthCheckRequest(), timeout=10):
                        statuses.append(r.status)
                except grpc.RpcError:
                    pass

            t = threading.Thread(target=watch)
            t.start()
            time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            assert len(fut.result().instruments) == 5
            t.join(timeout=10)
            assert proc.wait(timeout=20) == 0
        assert statuses[0] == health_pb2.HealthCheckResponse.SERVING
        assert health_pb2.HealthCheckResponse.NOT_SERVING in statuses
        log = (tmp_path / "logs" / "market.log").read_text()
        assert '"event": "stopped"' in log
