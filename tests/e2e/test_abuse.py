"""Abuse under concurrency (issue 16): password guessing that races the lock-out, a guess at the
current password through a stolen session, one client's burst against everyone's sign-in, and
an order key reused for another order."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest

from devstack.stack import Stack, StackConfig
from tests.conftest import Database
from tests.e2e.test_challenges import new_challenge, set_price
from tests.helpers import PASSWORD, admin_headers, bearer, reason, register_and_login

pytestmark = pytest.mark.e2e

FREE_FAILURES = 3  # LOGIN_FREE_FAILURES in the test stack (tests/conftest.py)


def _client(stack: Stack, source: str) -> httpx.AsyncClient:
    """A client whose connections come from `source` (any 127.x address is this machine), so
    the gateway sees it as a client of its own."""
    transport = httpx.AsyncHTTPTransport(local_address=source)
    return httpx.AsyncClient(base_url=stack.gateway_url, timeout=60, transport=transport)


async def test_forty_concurrent_wrong_guesses_check_at_most_the_policys_number(stack: Stack) -> None:
    # Checked after the fact, 18-28 of 40 were checked (policy 5): each read "not locked" first.
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as c:
        me = register_and_login(c)
    async with _client(stack, "127.0.0.5") as c:
        guesses = [
            c.post("/api/auth/login", json={"email": me["email"], "password": f"guess-{i}-x1"}) for i in range(40)
        ]
        answers = await asyncio.gather(*guesses)
        checked = [r for r in answers if r.status_code == 401]
        refused = [r for r in answers if r.status_code == 429]
        assert len(checked) + len(refused) == 40, [r.status_code for r in answers]
        assert 1 <= len(checked) <= FREE_FAILURES
        assert {reason(r) for r in refused} == {"LOGIN_THROTTLED"}
        # Locked now: the right password is refused too, unchecked.
        r = await c.post("/api/auth/login", json={"email": me["email"], "password": PASSWORD})
        assert r.status_code == 429


async def test_the_current_password_check_is_throttled_like_a_login(stack: Stack) -> None:
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as c:
        me = register_and_login(c)
        h = bearer(me["access_token"])
        change = {"new_password": "another-horse-battery-7"}
        answers = [
            c.post("/api/auth/password", json={**change, "current_password": f"guess-{i}-x1"}, headers=h).status_code
            for i in range(FREE_FAILURES + 2)
        ]
        assert answers[:FREE_FAILURES] == [400] * FREE_FAILURES and answers[FREE_FAILURES:] == [429, 429]
        # The same counter as login's: guessing here locks sign-in as well.
        assert c.post("/api/auth/login", json={"email": me["email"], "password": PASSWORD}).status_code == 429


@pytest.fixture(scope="module")
def auth_only(tmp_path_factory: pytest.TempPathFactory, database: Database) -> Iterator[Stack]:
    """Auth and the gateway with the gateway's own auth rate limits (the shared stack raises them)."""
    cfg = StackConfig.ephemeral(
        tmp_path_factory.mktemp("auth-only"), database_url=database.create_database(), services=("auth",)
    )
    with Stack(cfg) as s:
        yield s


async def test_the_auth_rate_limit_is_per_client_address_and_ignores_a_client_sent_xff(auth_only: Stack) -> None:
    # A bucket per address only (gateway default: 60 at once, 30 a second): the bucket shared
    # by every client, which a few of them could drain, is gone (issue 26). What a client
    # writes in X-Forwarded-For does not make it another client: only the load balancers'
    # entries are believed (none locally).
    async with _client(auth_only, "127.0.0.6") as noisy, _client(auth_only, "127.0.0.7") as quiet:
        burst = await asyncio.gather(
            *(noisy.get("/api/auth/me", headers={"x-forwarded-for": f"203.0.113.{i % 250}"}) for i in range(150))
        )
        codes = [r.status_code for r in burst]
        assert codes.count(429) >= 60 and codes.count(401) <= 100, codes  # 401: no token, past the limit
        refused = next(r for r in burst if r.status_code == 429)
        assert reason(refused) == "RATE_LIMITED" and refused.headers["retry-after"] == "1"
        # Envoy's own JWKS fetch comes from loopback too: never limited, so tokens still verify.
        jwks = await asyncio.gather(*(noisy.get("/api/auth/jwks") for _ in range(100)))
        assert [r.status_code for r in jwks] == [200] * 100
        after = await asyncio.gather(*(quiet.get("/api/auth/me") for _ in range(40)))
        assert [r.status_code for r in after] == [401] * 40  # limited only by its own bucket


def test_an_order_key_reused_for_another_order_is_a_conflict(stack: Stack) -> None:
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as c:
        set_price(c, admin_headers(c, stack), "BTCUSD", "50000", "50001")
        me = register_and_login(c)
        h = bearer(me["access_token"])
        cid = new_challenge(c, me)["id"]
        key = str(uuid.uuid4())
        order = {"challenge_id": cid, "symbol": "BTCUSD", "side": "BUY", "quantity": "0.01", "idempotency_key": key}
        first = c.post("/api/trades", json=order, headers=h)
        again = c.post("/api/trades", json=order, headers=h)
        assert first.status_code == again.status_code == 200 and first.json()["id"] == again.json()["id"]
        other = c.post("/api/trades", json={**order, "quantity": "0.02"}, headers=h)
        assert other.status_code == 409 and reason(other) == "IDEMPOTENCY_KEY_REUSED", other.text
        trades = c.get("/api/trades", params={"challenge_id": cid}, headers=h).json()["trades"]
        assert len(trades) == 1


def test_a_trader_holds_at_most_ten_unstarted_challenges(stack: Stack) -> None:
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as c:
        me = register_and_login(c)
        h = bearer(me["access_token"])

        def create() -> httpx.Response:
            body = {"plan_id": "ftmo-phase1", "account_size": "100000.00", "idempotency_key": str(uuid.uuid4())}
            return c.post("/api/challenges", json=body, headers=h)

        made = [create() for _ in range(10)]
        assert [r.status_code for r in made] == [200] * 10
        over = create()
        assert over.status_code == 429 and reason(over) == "TOO_MANY_PENDING_CHALLENGES", over.text
        # Starting one frees a place.
        assert c.post(f"/api/challenges/{made[0].json()['id']}/start", json={}, headers=h).status_code == 200
        assert create().status_code == 200


async def test_a_user_holds_at_most_ten_open_streams(stack: Stack) -> None:
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as c:
        me = register_and_login(c)
        cid = new_challenge(c, me)["id"]
    h = bearer(me["access_token"])
    path = f"/api/challenges/{cid}/events/stream"
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as c:
        streams = [c.stream("GET", path, headers=h) for _ in range(10)]
        opened = [await s.__aenter__() for s in streams]
        try:
            assert [r.status_code for r in opened] == [200] * 10
            over = await c.get(path, headers=h)
            assert over.status_code == 429 and reason(over) == "TOO_MANY_STREAMS", over.text
        finally:
            for s in streams:
                await s.__aexit__(None, None, None)
        # Closed streams are given back (once the service has seen them close).
        for _ in range(50):
            async with c.stream("GET", path, headers=h) as again:
                if again.status_code == 200:
                    break
            await asyncio.sleep(0.1)
        assert again.status_code == 200
