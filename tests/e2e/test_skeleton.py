"""The walking skeleton, tried as a browser would: through the real Envoy gateway."""

from __future__ import annotations

import itertools

import grpc
import httpx
import pytest
from tradesense.market.v1 import market_pb2, market_pb2_grpc

from devstack.stack import Stack
from tests.helpers import PASSWORD, bearer, new_email, register_and_login, sse_events

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def client(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.gateway_url, timeout=10)


def test_health_reports_gateway_and_every_service(client: httpx.Client) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["gateway"] == "SERVING"
    assert body["services"] == {s: "SERVING" for s in ("auth", "challenges", "market", "risk")}


def test_register_then_list_symbols_then_stream_prices(client: httpx.Client) -> None:
    email = new_email()
    r = client.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["email"] == email
    assert r.json()["user"]["role"] == "TRADER"

    r = client.get("/api/market/symbols", params={"page_size": 500})
    assert r.status_code == 200
    symbols = {i["symbol"]: i for i in r.json()["instruments"]}
    assert {"EURUSD", "XAUUSD", "BTCUSD", "AAPL", "IAM"} <= set(symbols)
    assert symbols["EURUSD"]["contract_size"] == "100000"  # decimal strings, never floats

    with client.stream("GET", "/api/market/stream", params={"symbols": "EURUSD,BTCUSD"}) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = list(itertools.islice(sse_events(resp), 4))
    assert {e["symbol"] for e in events} <= {"EURUSD", "BTCUSD"}
    for e in events:
        assert float(e["ask"]) >= float(e["bid"]) > 0
        assert e["time"].endswith("Z")


def test_plans_and_pagination(client: httpx.Client) -> None:
    first = client.get("/api/plans", params={"page_size": 2}).json()
    assert len(first["plans"]) == 2 and first["next_page_token"]
    rest = client.get("/api/plans", params={"page_size": 50, "page_token": first["next_page_token"]}).json()
    ids = [p["id"] for p in first["plans"] + rest["plans"]]
    assert len(ids) == len(set(ids)) >= 4
    assert rest["next_page_token"] == ""


def test_bad_input_is_a_400_with_field_violations_not_a_500(client: httpx.Client) -> None:
    r = client.post("/api/auth/register", json={"email": "not-an-email", "password": "short"})
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == 3  # INVALID_ARGUMENT
    violations = {
        v["field"] for d in body["details"] if d["@type"].endswith("BadRequest") for v in d["field_violations"]
    }
    assert violations == {"email", "password"}
    # Wrong JSON types are refused by the transcoder, also as 400; an unknown query parameter
    # (a cache-buster) is ignored.
    assert client.post("/api/auth/register", json={"email": ["x"]}).status_code == 400
    assert client.get("/api/market/symbols", params={"nope": "1"}).status_code == 200
    assert client.get("/api/market/prices", params={"symbols": "NOPE"}).status_code == 404
    assert client.get("/api/market/symbols", params={"page_token": "garbage!"}).status_code == 400


def test_unknown_routes_and_internal_methods_are_not_reachable(client: httpx.Client, stack: Stack) -> None:
    assert client.get("/api/does-not-exist").status_code == 404
    # A real gRPC client going through the gateway reaches public methods, but
    # INTERNAL ones are refused at the edge (Envoy's local reply, never the service).
    with grpc.insecure_channel(stack.gateway_url.removeprefix("http://")) as ch:
        stub = market_pb2_grpc.MarketServiceStub(ch)
        assert stub.ListSymbols(market_pb2.ListSymbolsRequest(page_size=1), timeout=5).instruments
        with pytest.raises(grpc.RpcError) as err:
            stub.GetQuote(market_pb2.GetQuoteRequest(symbol="EURUSD"), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_protected_route_needs_a_token(client: httpx.Client) -> None:
    r = client.get("/api/auth/me")
    assert r.status_code == 401


def test_metrics_ports_show_conventional_grpc_series(client: httpx.Client, stack: Stack) -> None:
    client.get("/api/market/symbols")
    client.get("/api/plans")
    session = register_and_login(client)  # auth: Register, Login
    assert client.get("/api/risk/alerts", headers=bearer(session["access_token"])).status_code == 200
    for service, method in {
        "market": "ListSymbols",
        "challenges": "ListPlans",
        "risk": "ListAlerts",
        "auth": "Login",
    }.items():
        text = httpx.get(stack.metrics_url(service)).text
        handled = [
            line
            for line in text.splitlines()
            if line.startswith("grpc_server_handled_total") and f'grpc_method="{method}"' in line
        ]
        assert handled, f"{service} has no grpc_server_handled_total for {method}"
        assert "grpc_server_started_total" in text
        assert "grpc_server_handling_seconds_bucket" in text
        assert 'grpc_type="unary"' in handled[0]
