"""What a security review of the code found (issue 26), each closed and tried on the real stack:
sessions, the last admin, the public health, cookie calls from other origins, anonymous
streams, slow export readers, uploads and per-user quotas. (The bus: test_market_leader.py; the
client address: test_abuse.py; the admin bootstrap: tests/integration/test_auth_bootstrap.py.)"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from devstack.stack import Stack, StackConfig
from tests.conftest import Database
from tests.e2e.test_challenges import new_challenge, set_price
from tests.helpers import PASSWORD, admin_headers, bearer, eventually, reason, register_and_login

pytestmark = pytest.mark.e2e

OWN_ORIGIN = "http://127.0.0.1"  # + the gateway's port: the console's own origin


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as c:
        yield c


def _sql(stack: Stack, schema: str, query: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(stack.database_url, server_settings={"search_path": schema})
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    # A thread of its own: callable from sync tests and from inside a running loop alike.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


# --- sessions ------------------------------------------------------------------------------------


def test_a_browser_never_gets_the_refresh_token_in_a_body(client: httpx.Client, stack: Stack) -> None:
    me = register_and_login(client)
    own = f"{OWN_ORIGIN}:{stack.cfg.gateway_port}"
    login = {"email": me["email"], "password": PASSWORD, "return_refresh_token": True}
    # A page's fetch (Origin, fetch metadata) gets its session in HttpOnly cookies only, even
    # when it asks: script on the page could read a body, never an HttpOnly cookie.
    r = httpx.post(f"{stack.gateway_url}/api/auth/login", json=login, headers={"origin": own})
    assert r.status_code == 200 and r.json()["refresh_token"] == "" and r.json()["access_token"]
    assert {c.split("=")[0] for c in r.headers.get_list("set-cookie")} == {"access_token", "refresh_token"}
    assert r.headers["cache-control"] == "no-store"
    refreshed = httpx.post(
        f"{stack.gateway_url}/api/auth/refresh",
        json={"return_refresh_token": True},
        headers={"origin": own, "sec-fetch-site": "same-origin"},
        cookies={"refresh_token": r.cookies["refresh_token"]},
    )
    assert refreshed.status_code == 200 and refreshed.json()["refresh_token"] == "", refreshed.text
    assert refreshed.headers["cache-control"] == "no-store"
    # An API client gets it only when it asks.
    quiet = httpx.post(f"{stack.gateway_url}/api/auth/login", json={**login, "return_refresh_token": False})
    assert quiet.status_code == 200 and quiet.json()["refresh_token"] == ""
    asked = httpx.post(f"{stack.gateway_url}/api/auth/login", json=login)
    assert asked.status_code == 200 and asked.json()["refresh_token"]


def test_every_response_says_nosniff(client: httpx.Client) -> None:
    for r in (
        client.get("/health"),
        client.get("/"),  # the console
        client.get("/api/market/symbols"),  # a service's answer
        client.get("/api/challenges"),  # Envoy's own refusal
        client.get("/no/such/route"),
    ):
        assert r.headers.get("x-content-type-options") == "nosniff", (r.url, r.status_code)


def test_logout_with_the_bearer_only_ends_the_refresh_family_too(client: httpx.Client) -> None:
    me = register_and_login(client)
    r = client.post("/api/auth/logout", json={}, headers=bearer(me["access_token"]))
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    # Before: the refresh token of that login still minted a new pair, which /me accepted.
    r = client.post("/api/auth/refresh", json={"refresh_token": me["refresh_token"]})
    assert r.status_code == 401 and reason(r) == "REFRESH_TOKEN_INVALID", r.text


def test_refresh_reuse_also_cuts_off_the_sessions_access_tokens(client: httpx.Client) -> None:
    me = register_and_login(client)
    second = client.post("/api/auth/refresh", json={"refresh_token": me["refresh_token"]}).json()
    assert client.get("/api/auth/me", headers=bearer(second["access_token"])).status_code == 200
    r = client.post("/api/auth/refresh", json={"refresh_token": me["refresh_token"]})  # a stolen copy
    assert r.status_code == 401 and reason(r) == "REFRESH_TOKEN_REUSED"
    # The access token minted from the rotated one dies with its session.
    eventually(lambda: client.get("/api/auth/me", headers=bearer(second["access_token"])).status_code == 401, 10)


def test_a_session_ends_at_its_absolute_lifetime_however_refreshed(client: httpx.Client, stack: Stack) -> None:
    trader = register_and_login(client)
    admin_login = client.post(
        "/api/auth/login",
        json={"email": stack.admin_email, "password": stack.admin_password, "return_refresh_token": True},
    ).json()
    client.cookies.clear()

    def begun_ago(user_id: str, age: timedelta) -> None:
        _sql(
            stack,
            "auth",
            "UPDATE refresh_tokens SET session_started_at = $2 WHERE user_id = $1::uuid AND revoked_at IS NULL",
            user_id,
            datetime.now(UTC) - age,
        )

    # A trader's session 13 hours old still refreshes; an admin's (12 hours at most) does not.
    begun_ago(trader["user"]["id"], timedelta(hours=13))
    begun_ago(admin_login["user"]["id"], timedelta(hours=13))
    r = client.post("/api/auth/refresh", json={"refresh_token": trader["refresh_token"]})
    assert r.status_code == 200, r.text
    r2 = client.post("/api/auth/refresh", json={"refresh_token": admin_login["refresh_token"]})
    assert r2.status_code == 401 and reason(r2) == "SESSION_EXPIRED", r2.text
    # 30 days after the login, a trader's ends too, though its refresh token is fresh.
    begun_ago(trader["user"]["id"], timedelta(days=30, minutes=1))
    r3 = client.post("/api/auth/refresh", json={"refresh_token": r.json()["refresh_token"]})
    assert r3.status_code == 401 and reason(r3) == "SESSION_EXPIRED"


def test_cookie_calls_from_an_unlisted_origin_are_refused(client: httpx.Client, stack: Stack) -> None:
    me = register_and_login(client)
    cookies = {"access_token": me["access_token"]}
    url = "/api/risk/alerts/stream"
    for headers in ({"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}):
        r = httpx.get(f"{stack.gateway_url}{url}", headers=headers, cookies=cookies)
        assert r.status_code == 403 and reason(r) == "ORIGIN_REFUSED", (headers, r.text)
    r = httpx.post(
        f"{stack.gateway_url}/api/auth/refresh",
        json={},
        headers={"origin": "https://evil.example"},
        cookies={"refresh_token": me["refresh_token"]},
    )
    assert r.status_code == 403 and reason(r) == "ORIGIN_REFUSED"
    # The API's own origin, a listed one, and a bearer-only call from anywhere pass.
    own = f"{OWN_ORIGIN}:{stack.cfg.gateway_port}"
    for headers in ({"origin": own}, {"origin": "https://app.example.com"}, {"sec-fetch-site": "same-origin"}):
        with httpx.stream("GET", f"{stack.gateway_url}{url}", headers=headers, cookies=cookies) as s:
            assert s.status_code == 200, headers
    r = httpx.get(
        f"{stack.gateway_url}/api/auth/me", headers={"origin": "https://evil.example", **bearer(me["access_token"])}
    )
    assert r.status_code == 200


# --- roles, health ------------------------------------------------------------------------------


def test_the_last_active_admin_cannot_demote_or_disable_itself(client: httpx.Client, stack: Stack) -> None:
    h = admin_headers(client, stack)
    me = client.get("/api/auth/me", headers=h).json()
    users, token = [], ""
    while True:
        page = client.get("/api/auth/users", params={"page_size": 100, "page_token": token}, headers=h).json()
        users += page["users"]
        token = page["next_page_token"]
        if not token:
            break
    for u in users:  # other tests' admins step down: the bootstrap admin is the last one
        if u["role"] == "ADMIN" and u["id"] != me["id"] and not u["disabled"]:
            assert client.post(f"/api/auth/users/{u['id']}/role", json={"role": "TRADER"}, headers=h).status_code == 200
    r = client.post(f"/api/auth/users/{me['id']}/role", json={"role": "TRADER"}, headers=h)
    assert r.status_code == 400 and reason(r) == "LAST_ADMIN", r.text
    r = client.post(f"/api/auth/users/{me['id']}/disabled", json={"disabled": True}, headers=h)
    assert r.status_code == 400 and reason(r) == "LAST_ADMIN", r.text
    assert client.get("/api/auth/me", headers=h).json()["role"] == "ADMIN"


def test_public_health_names_providers_and_their_state_only(client: httpx.Client, stack: Stack) -> None:
    public = client.get("/api/market/health").json()["providers"]
    assert public and all(p["detail"] == "" and p["name"] and p["circuit_state"] for p in public)
    operator = client.get("/api/market/health", headers=admin_headers(client, stack)).json()["providers"]
    assert any(p["detail"] for p in operator)


# --- streams, exports, uploads -----------------------------------------------------------------


async def test_anonymous_streams_are_capped_per_address_and_orders_still_fill(
    client: httpx.Client, stack: Stack
) -> None:
    cap = 20  # ANONYMOUS_STREAMS_PER_ADDRESS's default
    trader = register_and_login(client)
    cid = new_challenge(client, trader)["id"]
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.11")  # an address of its own
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30, transport=transport) as anon:
        streams = [anon.stream("GET", "/api/market/stream", params={"symbols": "EURUSD"}) for _ in range(cap + 5)]
        opened = []
        for s in streams:
            opened.append(await s.__aenter__())
        try:
            codes = [r.status_code for r in opened]
            assert codes.count(200) == cap and codes.count(429) == 5, codes
            refused = next(r for r in opened if r.status_code == 429)
            await refused.aread()
            assert reason(refused) == "TOO_MANY_STREAMS_FROM_ADDRESS"
            assert refused.headers["retry-after"] == "5"
            # Meanwhile a trader's order is priced and filled from the live feed as usual.
            order = {"challenge_id": cid, "symbol": "EURUSD", "side": "BUY", "quantity": "0.01"}
            t0 = time.monotonic()
            r = client.post("/api/trades", json=order, headers=bearer(trader["access_token"]))
            took = time.monotonic() - t0
            assert r.status_code == 200, r.text
            print(f"order filled in {took * 1000:.0f} ms with {cap} anonymous streams open")
        finally:
            for s in streams:
                await s.__aexit__(None, None, None)


def _recorded_session(stack: Stack, rows: int) -> int:
    """A recorded session of `rows` flushes of EURUSD, written as the recorder writes them."""
    start = datetime.now(UTC) - timedelta(minutes=30)
    sid = _sql(
        stack,
        "market",
        "INSERT INTO recorded_sessions (term, started_at, ended_at, symbols, tick_count) "
        "VALUES (0, $1, $2, '{EURUSD}', $3) RETURNING id",
        start,
        start + timedelta(seconds=rows),
        rows * 50,
    )[0]["id"]
    _sql(
        stack,
        "market",
        "INSERT INTO recorded_ticks (session_id, symbol, start, offsets_us, bids, asks) "
        "SELECT $1, 'EURUSD', $2::timestamptz + make_interval(secs => g), "
        "       (SELECT array_agg(k * 20000) FROM generate_series(0, 49) k), "
        "       array_fill(108000::bigint, ARRAY[50]), array_fill(108002::bigint, ARRAY[50]) "
        "FROM generate_series(0, $3 - 1) g",
        sid,
        start,
        rows,
    )
    return int(sid)


async def test_slow_export_readers_hold_no_connection_and_the_lease_holds(client: httpx.Client, stack: Stack) -> None:
    # 500,000 ticks (~20 MB of CSV, 50 pages of rows): more than the buffers on the way hold, so a
    # reader that stops reading keeps its export open.
    sid = _recorded_session(stack, 10_000)
    traders = [register_and_login(client) for _ in range(10)]
    path = f"/api/market/sessions/{sid}/ticks"
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as ac:
        # The first trader twice at once, then the nine others.
        callers = [traders[0], *traders]
        streams = [ac.stream("GET", path, headers=bearer(t["access_token"])) for t in callers]
        opened = [await s.__aenter__() for s in streams]
        try:
            codes = [r.status_code for r in opened]
            # One export per user, a few per process (4); the rest are told to retry.
            assert codes[:2] == [200, 429] and codes.count(200) == 4 and codes.count(429) == 7, codes
            await opened[1].aread()
            assert reason(opened[1]) == "TOO_MANY_EXPORTS" and "per user" in opened[1].text
            readers = [r.aiter_bytes() for r in opened if r.status_code == 200]
            firsts = [await anext(r) for r in readers]  # one chunk each, then nobody reads on
            assert all(f.startswith(b"time,symbol,bid,ask\n") for f in firsts)
            await asyncio.sleep(2.0)
            # Nothing held while they dawdle: no market connection in a transaction, the
            # ingestion lease renewed, charts answered.
            stuck = _sql(
                stack,
                "market",
                "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'market' "
                "AND state LIKE 'idle in transaction%'",
            )[0]["n"]
            assert stuck == 0
            lease = _sql(
                stack, "market", "SELECT expires_at > now() AS live FROM leader_leases WHERE name = 'ingestion'"
            )
            assert lease[0]["live"]
            charts = await asyncio.gather(
                *(ac.get("/api/market/chart/EURUSD", params={"interval": "1m", "limit": 50}) for _ in range(20))
            )
            assert [c.status_code for c in charts] == [200] * 20
            # A reader that goes on gets the whole session, in order.
            body = firsts[0] + b"".join([chunk async for chunk in readers[0]])
        finally:
            for s in streams:
                await s.__aexit__(None, None, None)
    lines = body.decode().splitlines()
    assert len(lines) == 10_000 * 50 + 1 and lines[-1].endswith(",1.08000,1.08002")


def test_an_upload_past_the_cap_is_refused_and_one_runs_per_user(client: httpx.Client) -> None:
    me = register_and_login(client)
    h = {**bearer(me["access_token"]), "content-type": "text/csv"}
    row = b"2026-01-02T10:00:00Z,1.5,EURUSD\n"

    def body(mib: int) -> Iterator[bytes]:
        yield b"closed_at,pnl,symbol\n"
        block = row * (65536 // len(row))
        for _ in range(mib * 16):
            yield block

    r = client.post("/api/risk/analyze", content=body(33), headers=h)  # RISK_UPLOAD_MAX_MIB: 32
    assert r.status_code == 400 and "at most 32 MiB" in r.text, r.text[:300]
    long_symbol = b"closed_at,pnl,symbol\n2026-01-02T10:00:00Z,1.5," + b"S" * 1000 + b"\n"
    r = client.post("/api/risk/analyze", content=long_symbol, headers=h)
    assert r.status_code == 400 and "symbol is longer" in r.text
    ok = client.post("/api/risk/analyze", content=b"closed_at,pnl\n" + b"2026-01-02T10:00:00Z,1.5\n" * 3, headers=h)
    assert ok.status_code == 200 and ok.json()["total_trades"] == 3


# --- quotas --------------------------------------------------------------------------------------


def _refused_with_retry(r: httpx.Response, why: str) -> None:
    assert r.status_code == 429 and reason(r) == why, r.text
    assert int(r.headers["retry-after"]) >= 1


@pytest.fixture(scope="module")
def quotas(tmp_path_factory: pytest.TempPathFactory, database: Database) -> Iterator[tuple[Stack, httpx.Client]]:
    """Auth, market and challenges at the quotas' defaults (the shared stack lifts them: its
    fuzzers trade flat out)."""
    cfg = StackConfig.ephemeral(
        tmp_path_factory.mktemp("quotas"),
        database_url=database.create_database(),
        services=("auth", "market", "challenges"),
        auth_rate_limit_per_client=(100_000, 100_000),
    )
    with Stack(cfg) as s, httpx.Client(base_url=s.gateway_url, timeout=30) as c:
        yield s, c


async def test_orders_per_second_are_a_quota_per_user(quotas: tuple[Stack, httpx.Client]) -> None:
    stack, client = quotas
    set_price(client, admin_headers(client, stack), "BTCUSD", "50000.00", "50000.00")
    me, other = register_and_login(client), register_and_login(client)
    cid, other_cid = new_challenge(client, me)["id"], new_challenge(client, other)["id"]
    order = {"symbol": "BTCUSD", "side": "BUY", "quantity": "0.01"}
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as ac:
        burst = await asyncio.gather(
            *(
                ac.post("/api/trades", json={**order, "challenge_id": cid}, headers=bearer(me["access_token"]))
                for _ in range(70)
            )
        )
    codes = [r.status_code for r in burst]
    assert codes.count(200) >= 50 and codes.count(429) >= 10, codes  # a burst of 50, then 10 a second
    _refused_with_retry(next(r for r in burst if r.status_code == 429), "ORDER_RATE_LIMITED")
    # Another trader is not affected.
    r = client.post("/api/trades", json={**order, "challenge_id": other_cid}, headers=bearer(other["access_token"]))
    assert r.status_code == 200


def test_journal_writes_and_live_challenges_are_quotas_per_user(quotas: tuple[Stack, httpx.Client]) -> None:
    stack, client = quotas
    set_price(client, admin_headers(client, stack), "BTCUSD", "50000.00", "50000.00")
    me = register_and_login(client)
    h = bearer(me["access_token"])
    cid = new_challenge(client, me)["id"]
    trade = client.post(
        "/api/trades", json={"challenge_id": cid, "symbol": "BTCUSD", "side": "BUY", "quantity": "0.01"}, headers=h
    )
    tid = trade.json()["id"]
    answers = [client.post(f"/api/trades/{tid}/journal", json={"note": f"note {i}"}, headers=h) for i in range(25)]
    codes = [r.status_code for r in answers]
    assert codes[:20] == [200] * 20 and 429 in codes[20:], codes  # a burst of 20, then one a second
    _refused_with_retry(next(r for r in answers if r.status_code == 429), "JOURNAL_RATE_LIMITED")

    for _ in range(19):  # 20 live at most (the first is live already)
        new_challenge(client, me)
    body = {"plan_id": "ftmo-phase1", "account_size": "100000.00", "idempotency_key": str(uuid.uuid4())}
    pending = client.post("/api/challenges", json=body, headers=h).json()
    r = client.post(f"/api/challenges/{pending['id']}/start", json={}, headers=h)
    assert r.status_code == 429 and reason(r) == "TOO_MANY_LIVE_CHALLENGES", r.text
