"""One trace covers gateway → challenges → market for a trade (OTLP to an in-memory collector)."""

from __future__ import annotations

from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from devstack.stack import Stack, StackConfig, free_port
from tests.conftest import Database
from tests.e2e.test_challenges import new_challenge
from tests.helpers import admin_headers, bearer, eventually, register_and_login

pytestmark = pytest.mark.integration


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP trace receiver that keeps every span in memory."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, str]] = []  # (service, span name, trace id)
        self.texts: list[str] = []  # every span's name and attribute values, as text

    def Export(self, request: Any, context: Any) -> Any:
        for rs in request.resource_spans:
            service = next((a.value.string_value for a in rs.resource.attributes if a.key == "service.name"), "?")
            for ss in rs.scope_spans:
                for span in ss.spans:
                    self.spans.append((service, span.name, span.trace_id.hex()))
                    self.texts.append(" ".join([span.name, *(str(a.value) for a in span.attributes)]))
        return trace_service_pb2.ExportTraceServiceResponse()


def test_a_trade_is_one_trace_across_gateway_challenges_and_market(tmp_path: Path, database: Database) -> None:
    collector = Collector()
    port = free_port()
    server = grpc.server(futures.ThreadPoolExecutor(4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    cfg = StackConfig.ephemeral(
        tmp_path,
        database_url=database.create_database(),
        services=("auth", "market", "challenges"),
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "QUOTE_SOURCE": "market",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        },
    )
    try:
        with Stack(cfg) as stack:
            c = httpx.Client(base_url=stack.gateway_url, timeout=20)
            admin = admin_headers(c, stack)
            c.post("/api/market/admin/prices/BTCUSD", json={"bid": "50000", "ask": "50001"}, headers=admin)
            trader = register_and_login(c)
            ch = new_challenge(c, trader)
            r = c.post(
                "/api/trades",
                json={"challenge_id": ch["id"], "symbol": "BTCUSD", "side": "BUY", "quantity": "1"},
                headers=bearer(trader["access_token"]),
            )
            assert r.status_code == 200, r.text

            def trade_trace() -> set[tuple[str, str]] | None:
                """The (service, span) pairs of the PlaceTrade's trace, once gateway and market spans are in."""
                for service, name, tid in collector.spans:
                    if service == "challenges" and name.endswith("/PlaceTrade"):
                        spans = {(s, n) for s, n, t in collector.spans if t == tid}
                        return spans if {"gateway", "market"} <= {s for s, _ in spans} else None
                return None

            spans = eventually(trade_trace, 20, 0.3)
            assert {"gateway", "challenges", "market"} <= {s for s, _ in spans}, spans
            assert ("market", "/tradesense.market.v1.MarketService/GetQuote") in spans

            # An SSE stream whose client also put its token in the query (refused there since
            # issue 26; the cookie authenticates it): the gateway's span names the path, never
            # the token (issue 16, item 10).
            token = trader["access_token"]
            path = f"/api/challenges/{ch['id']}/events/stream"
            query = {"access_token": token, "after_sequence": "0"}
            with c.stream("GET", path, params=query, cookies={"access_token": token}) as r:
                assert r.status_code == 200
                next(r.iter_lines())
            eventually(lambda: any(path in t for t in collector.texts) or None, 20, 0.3)
            assert not [t for t in collector.texts if token in t or "access_token" in t]
    finally:
        server.stop(0)
