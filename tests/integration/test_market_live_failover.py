"""The live exchange adapter against recorded responses served locally: it is used while
it answers, the router falls back when it dies, and takes it back when it returns."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import grpc
import pytest
from tradesense.market.v1 import market_pb2, market_pb2_grpc

from devstack.stack import Stack, StackConfig, free_port
from tests.conftest import Database
from tests.helpers import eventually

pytestmark = pytest.mark.integration

RECORDED = (Path(__file__).parent.parent / "fixtures" / "binance_bookTicker.json").read_bytes()


class FakeExchange:
    """Serves the recorded bookTicker answer, like the exchange's public REST API."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.requests: list[str] = []
        self._server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                if not self.path.startswith("/api/v3/ticker/bookTicker"):
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(RECORDED)))
                self.end_headers()
                self.wfile.write(RECORDED)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


def test_live_feed_failover_and_recovery(tmp_path: Path, database: Database) -> None:
    exchange = FakeExchange(free_port())
    exchange.start()
    cfg = StackConfig.ephemeral(
        tmp_path,
        database_url=database.create_database(),
        services=("auth", "market"),
        with_gateway=False,
        env={
            "MARKET_LIVE_URL": f"http://127.0.0.1:{exchange.port}",
            "MARKET_LIVE_INTERVAL": "0.2",
            "MARKET_STALE_AFTER_SECONDS": "1.5",
            "MARKET_TICK_INTERVAL": "0.2",
        },
    )
    try:
        with Stack(cfg) as stack, grpc.insecure_channel(stack.grpc_addr("market")) as ch:
            market = market_pb2_grpc.MarketServiceStub(ch)

            def btc() -> market_pb2.Price:
                return market.GetPrices(market_pb2.GetPricesRequest(symbols=["BTCUSD"]), timeout=5).prices[0]

            def health() -> dict[str, market_pb2.ProviderHealth]:
                r = market.GetProviderHealth(market_pb2.GetProviderHealthRequest(), timeout=5)
                return {p.name: p for p in r.providers}

            eventually(lambda: btc().provider == "live", 20)
            assert (btc().bid, btc().ask) == ("97012.34", "97012.35")  # the recorded book
            assert "symbols=" in exchange.requests[0] and "BTCUSDT" in exchange.requests[0]
            assert health()["live"].healthy and health()["live"].circuit_state == "closed"

            exchange.stop()  # the exchange dies
            eventually(lambda: btc().provider == "simulated", 20)  # the calibrated model (issue 27)
            eventually(lambda: health()["live"].circuit_state in ("open", "half_open"), 20)
            assert not health()["live"].healthy
            assert health()["simulated"].healthy

            exchange.start()  # and comes back
            eventually(lambda: btc().provider == "live", 20)
            eventually(lambda: health()["live"].healthy, 20)
    finally:
        try:
            exchange.stop()
        except Exception:
            pass
