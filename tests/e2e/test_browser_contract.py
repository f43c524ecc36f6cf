"""What a browser on another origin, or any browser, can rely on at the gateway: CORS on every
response for listed origins only, errors in one shape with a stable reason, no token echoed,
unknown query parameters ignored."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from devstack.stack import Stack
from tests.e2e.test_challenges import new_challenge, set_price
from tests.helpers import PASSWORD, admin_headers, bearer, eventually, reason, register_and_login, sse_frames

pytestmark = pytest.mark.e2e

ALLOWED, OTHER = "https://app.example.com", "https://evil.example"  # the test stack's allow-list


@pytest.fixture(scope="module")
def client(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.gateway_url, timeout=20)


@pytest.fixture(scope="module")
def admin(client: httpx.Client, stack: Stack) -> dict[str, str]:
    return admin_headers(client, stack)


def grant(r: httpx.Response) -> tuple[str | None, str | None]:
    return r.headers.get("access-control-allow-origin"), r.headers.get("access-control-allow-credentials")


def test_a_preflight_is_granted_to_a_listed_origin_only(client: httpx.Client) -> None:
    ask = {"access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type"}
    r = client.options("/api/trades", headers={"origin": ALLOWED, **ask})
    assert r.status_code == 200 and grant(r) == (ALLOWED, "true")
    assert "authorization" in r.headers["access-control-allow-headers"]
    r = client.options("/api/trades", headers={"origin": OTHER, **ask})
    assert grant(r) == (None, None)


@pytest.mark.parametrize(
    ("method", "path", "authorized", "status"),
    [
        ("GET", "/api/plans", False, 200),  # a unary answer
        ("GET", "/api/challenges/00000000-0000-4000-8000-000000000000", True, 404),  # a service's error
        ("GET", "/api/challenges", False, 401),  # Envoy's own refusal: no token
        ("GET", "/api/nothing-here", False, 404),  # no route
        ("POST", "/api/auth/login", False, 400),  # the transcoder's: not JSON
    ],
)
def test_every_response_carries_the_grant_for_a_listed_origin_and_none_for_another(
    client: httpx.Client, method: str, path: str, authorized: bool, status: int
) -> None:
    h = bearer(register_and_login(client)["access_token"]) if authorized else {}
    for origin, expected in ((ALLOWED, (ALLOWED, "true")), (OTHER, (None, None))):
        r = client.request(method, path, headers={"origin": origin, **h}, content=b"{" if method == "POST" else None)
        assert r.status_code == status, r.text
        assert grant(r) == expected, (origin, dict(r.headers))


def test_a_price_stream_carries_the_grant(client: httpx.Client) -> None:
    with client.stream("GET", "/api/market/stream", params={"symbols": "EURUSD"}, headers={"origin": ALLOWED}) as r:
        assert r.status_code == 200 and grant(r) == (ALLOWED, "true")


def test_gateway_refusals_have_a_stable_reason_and_no_internals(client: httpx.Client) -> None:
    r = client.get("/api/challenges")
    assert (r.status_code, reason(r)) == (401, "TOKEN_MISSING")
    assert r.headers["www-authenticate"] == 'Bearer realm="tradesense.io"'
    token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    r = client.get(
        "/api/challenges/00000000-0000-4000-8000-000000000000/events/stream", cookies={"access_token": token}
    )
    assert (r.status_code, reason(r)) == (401, "TOKEN_INVALID")
    assert not any(token in v for v in r.headers.values())  # the SSE cookie token is never echoed
    assert r.headers["www-authenticate"] == 'Bearer realm="tradesense.io", error="invalid_token"'
    h = bearer(register_and_login(client)["access_token"])
    r = client.post("/api/trades", json={"challenge_id": "x", "symbol": "EURUSD", "side": "SIDEWAYS"}, headers=h)
    assert (r.status_code, reason(r)) == (400, "MALFORMED_REQUEST"), r.text
    assert "googleapis" not in r.json()["message"] and "SIDEWAYS" in r.json()["message"]
    assert "grpc-status" not in r.headers and "grpc-message" not in r.headers
    r = client.post("/api/auth/login", content=b"x" * (2 << 20), headers={"content-type": "application/json"})
    assert (r.status_code, reason(r)) == (413, "BODY_TOO_LARGE")
    r = client.get("/api/nothing-here")
    assert (r.status_code, reason(r), r.json()["message"]) == (404, "NOT_FOUND", "no such route")


def test_an_unknown_query_parameter_is_ignored(client: httpx.Client) -> None:
    r = client.get("/api/plans", params={"_": "1733100000000", "utm_source": "mail"})
    assert r.status_code == 200 and r.json()["plans"]


def _frames(client: httpx.Client, path: str, n: int, **headers: str) -> tuple[httpx.Headers, list[Any]]:
    """The first `n` events (heartbeats aside) of a stream, then the connection dropped."""
    out = []
    with client.stream("GET", path, headers=headers) as r:
        assert r.status_code == 200, r.read()
        for frame in sse_frames(r):
            if frame[1] != ":":
                out.append(frame)
            if len(out) == n:
                break
    return r.headers, out


def test_a_dropped_event_stream_resumes_after_its_last_id_with_nothing_lost_or_doubled(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    trader = register_and_login(client)
    h = bearer(trader["access_token"])
    c = new_challenge(client, trader)
    set_price(client, admin, "BTCUSD", "50000.00", "50010.00")
    path = f"/api/challenges/{c['id']}/events/stream"
    headers, first = _frames(client, path, 2, **h)  # created, started; then the browser drops
    assert headers["content-type"] == "text/event-stream" and headers["cache-control"] == "no-cache"
    assert [e for _, e, _ in first] == ["status_changed", "status_changed"]
    assert [d["status_changed"]["to_status"] for _, _, d in first] == ["PENDING", "ACTIVE"]
    order = {"challenge_id": c["id"], "symbol": "BTCUSD", "side": "BUY", "quantity": "0.1"}
    for k in ("a", "b"):  # while it is away
        assert client.post("/api/trades", json={**order, "idempotency_key": k}, headers=h).status_code == 200
    last_id = first[-1][0]
    _, resumed = _frames(client, path, 2, **h, **{"last-event-id": str(last_id)})
    assert [e for _, e, _ in resumed] == ["trade_executed", "trade_executed"]
    assert [int(i) for i, _, _ in resumed] == sorted({int(i) for i, _, _ in resumed})
    assert int(resumed[0][0]) > int(last_id)
    fill = resumed[0][2]["trade_executed"]
    assert (fill["side"], fill["quantity"], fill["reason"]) == ("BUY", "0.100", "order")  # typed, not a JSON string
    # The same events as a page of the list beside the stream.
    page = client.get(f"/api/challenges/{c['id']}/events", params={"after_sequence": last_id}, headers=h).json()
    assert [e["sequence"] for e in page["events"]] == [i for i, _, _ in resumed]
    assert [e["type"] for e in page["events"]] == ["trade_executed", "trade_executed"]
    only = client.get(f"/api/challenges/{c['id']}/events", params={"types": "status_changed"}, headers=h).json()
    assert [e["status_changed"]["to_status"] for e in only["events"]] == ["PENDING", "ACTIVE"]


def test_a_quiet_stream_gets_heartbeats_and_an_ended_challenge_stream_ends(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    trader = register_and_login(client)
    h = bearer(trader["access_token"])
    c = new_challenge(client, trader)
    path = f"/api/challenges/{c['id']}/events/stream"
    with client.stream("GET", path, headers=h) as r:
        kinds = []
        for _, event, _ in sse_frames(r):
            kinds.append(event)
            if event == ":":  # the test stack beats every second (SSE_HEARTBEAT_SECONDS)
                break
    assert kinds[:2] == ["status_changed", "status_changed"] and kinds[-1] == ":"
    assert client.post(f"/api/challenges/{c['id']}/cancel", json={"reason": "test"}, headers=admin).status_code == 200
    with client.stream("GET", path, headers=h) as r:  # replays, then ends by itself
        events = [e for _, e, _ in sse_frames(r) if e != ":"]
    assert events[-2:] == ["status_changed", "end"]


MONEY = re.compile(r"^-?\d+\.\d\d$")


def test_what_a_dashboard_needs_is_in_the_api_in_one_number_format(client: httpx.Client, admin: dict[str, str]) -> None:
    trader = register_and_login(client)
    h = bearer(trader["access_token"])
    c = new_challenge(client, trader)  # FTMO-style phase 1, $100,000: daily loss $5,000, max loss $10,000
    set_price(client, admin, "BTCUSD", "50000.00", "50010.00")
    order = {"challenge_id": c["id"], "symbol": "BTCUSD", "side": "BUY", "quantity": "0.5", "idempotency_key": "d1"}
    fill = client.post("/api/trades", json=order, headers=h).json()
    assert (fill["reason"], fill["challenge_status"]) == ("order", "ACTIVE")  # where the fill left it
    assert MONEY.match(fill["commission"]) and MONEY.match(fill["realized_pnl"])

    detail = client.get(f"/api/challenges/{c['id']}", headers=h).json()
    listed = client.get("/api/challenges", headers=h).json()["challenges"]
    for ch in (detail["challenge"], next(x for x in listed if x["id"] == c["id"])):
        assert ch["plan_name"] and ch["trading_day"] and ch["next_reset_at"]
        assert (ch["daily_loss_floor"], ch["max_loss_floor"]) == ("95000.00", "90000.00")
        assert all(MONEY.match(ch[k]) for k in ("initial_balance", "balance", "current_equity", "daily_start_equity"))
    assert isinstance(detail["total_trades"], int) and isinstance(detail["fills"], int)
    assert (detail["fills"], detail["total_trades"], detail["avg_trade_pnl"]) == (1, 0, "0.00")
    units = {o["rule"]: o["unit"] for o in detail["objectives"]}
    assert units["daily_loss"] == "money" and units["min_trading_days"] == "days"
    assert all(MONEY.match(o["limit"]) for o in detail["objectives"] if o["unit"] == "money")

    [pos] = client.get(f"/api/challenges/{c['id']}/positions", headers=h).json()["positions"]
    assert (pos["side"], pos["fees"], pos["quantity"]) == ("LONG", fill["commission"], "0.500")
    assert pos["opened_at"] == fill["executed_at"]
    curve = client.get(f"/api/challenges/{c['id']}/equity", params={"interval": "1m"}, headers=h).json()
    assert curve["interval"] == "1m" and curve["points"] and all(MONEY.match(p["equity"]) for p in curve["points"])
    bad = client.get(f"/api/challenges/{c['id']}/equity", params={"interval": "7s"}, headers=h)
    assert bad.status_code == 400

    # The price falls through the daily loss: the closing fill says why, and the list says it failed.
    set_price(client, admin, "BTCUSD", "39000.00", "39010.00")
    trades = eventually(
        lambda: [t for t in client.get("/api/trades", params={"challenge_id": c["id"]}, headers=h).json()["trades"]
                 if t["reason"] == "breach"]
    )  # fmt: skip
    assert trades[0]["breached_rule"] in ("daily_loss", "max_loss")


def test_the_console_is_served_on_the_api_origin_with_its_security_headers(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["referrer-policy"] == "no-referrer"
    assert 'src="/app.js"' in page.text and "<script>" not in page.text and "style=" not in page.text
    script = client.get("/app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert client.get("/vendor/lightweight-charts.standalone.production.mjs").status_code == 200


def test_login_gives_the_browser_httponly_strict_cookies_that_refresh_and_stream_alone(stack: Stack) -> None:
    trader = register_and_login(httpx.Client(base_url=stack.gateway_url, timeout=20))
    browser = httpx.Client(base_url=stack.gateway_url, timeout=20)  # keeps cookies, as a browser does
    r = browser.post("/api/auth/login", json={"email": trader["email"], "password": PASSWORD})
    assert r.status_code == 200
    cookies = r.headers.get_list("set-cookie")
    assert len(cookies) == 2 and all("HttpOnly" in c and "SameSite=Strict" in c for c in cookies)
    assert {c.split("=")[0] for c in cookies} == {"access_token", "refresh_token"}
    c = new_challenge(browser, {**trader, "access_token": r.json()["access_token"]})
    # The stream with the cookie alone (EventSource sends no Authorization header).
    with browser.stream("GET", f"/api/challenges/{c['id']}/events/stream") as s:
        assert s.status_code == 200
    refreshed = browser.post("/api/auth/refresh", json={})  # the cookie's refresh token, rotated
    assert refreshed.status_code == 200 and refreshed.json()["access_token"] != r.json()["access_token"]
    again = browser.post("/api/auth/refresh", json={})  # the rotated cookie: not a reuse
    assert again.status_code == 200, again.text
    out = browser.post("/api/auth/logout", json={})
    assert out.status_code == 200 and all("Max-Age=0" in x for x in out.headers.get_list("set-cookie"))
    assert browser.post("/api/auth/refresh", json={}).status_code == 400  # no cookie left: nothing to refresh
