"""Auth through the gateway and straight to the services: tokens, refresh, roles, brute force."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tradesense.auth.v1 import auth_pb2, auth_pb2_grpc
from tradesense.market.v1 import market_pb2, market_pb2_grpc
from tradesense.risk.v1 import risk_pb2, risk_pb2_grpc

from devstack.stack import Stack
from services.auth import keyring
from tests.helpers import PASSWORD, bearer, eventually, new_email, reason, register_and_login

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def client(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.gateway_url, timeout=15)


@pytest.fixture(scope="module")
def admin(client: httpx.Client, stack: Stack) -> str:
    r = client.post("/api/auth/login", json={"email": stack.admin_email, "password": stack.admin_password})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["role"] == "ADMIN"
    client.cookies.clear()  # an API client, as register_and_login
    return str(r.json()["access_token"])


# --- the happy path --------------------------------------------------------------------------


def test_register_login_me_refresh_logout(client: httpx.Client) -> None:
    email = new_email()
    s = register_and_login(client, email.upper())  # emails are case-insensitive
    me = client.get("/api/auth/me", headers=bearer(s["access_token"]))
    assert me.status_code == 200 and me.json()["email"].lower() == email.lower()
    assert s["token_type"] == "Bearer" and s["expires_in"] == 900

    r = client.post("/api/auth/refresh", json={"refresh_token": s["refresh_token"]})
    assert r.status_code == 200
    rotated = r.json()
    assert rotated["refresh_token"] != s["refresh_token"]
    assert client.get("/api/auth/me", headers=bearer(rotated["access_token"])).status_code == 200

    assert client.post("/api/auth/logout", json={"refresh_token": rotated["refresh_token"]}).status_code == 200
    r = client.post("/api/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert r.status_code == 401 and reason(r) == "REFRESH_TOKEN_INVALID"


def test_same_email_any_case_is_one_account(client: httpx.Client) -> None:
    email = new_email()
    assert client.post("/api/auth/register", json={"email": email, "password": PASSWORD}).status_code == 200
    r = client.post("/api/auth/register", json={"email": email.upper(), "password": PASSWORD})
    assert r.status_code == 409 and reason(r) == "EMAIL_TAKEN"


def test_register_is_idempotent_by_key(client: httpx.Client) -> None:
    key = str(uuid.uuid4())
    body = {"email": new_email(), "password": PASSWORD, "idempotency_key": key}
    first = client.post("/api/auth/register", json=body)
    again = client.post("/api/auth/register", json=body)
    assert first.status_code == again.status_code == 200
    assert first.json()["user"]["id"] == again.json()["user"]["id"]
    other = client.post("/api/auth/register", json={**body, "email": new_email()})
    assert other.status_code == 409 and reason(other) == "IDEMPOTENCY_KEY_REUSED"


# --- refresh-token reuse -----------------------------------------------------------------------


def test_refresh_token_reuse_revokes_the_family(client: httpx.Client) -> None:
    s = register_and_login(client)
    first = client.post("/api/auth/refresh", json={"refresh_token": s["refresh_token"]}).json()
    # A thief replays the original token: refused, and the legitimate new one dies with it.
    r = client.post("/api/auth/refresh", json={"refresh_token": s["refresh_token"]})
    assert r.status_code == 401 and reason(r) == "REFRESH_TOKEN_REUSED"
    r = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 401 and reason(r) == "REFRESH_TOKEN_INVALID"


# --- forged and broken tokens --------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _claims(user_id: str, **over: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims = {
        "iss": "tradesense-auth",
        "aud": "tradesense",
        "sub": user_id,
        "role": "admin",  # forgers always claim the most
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "jti": str(uuid.uuid4()),
    }
    claims.update(over)
    return claims


def _forgeries(stack: Stack, valid: str, user_id: str) -> dict[str, str]:
    ring = keyring.KeyRing(stack.cfg.base_dir / "auth-keys", generate_if_empty=False)
    real, kid = ring.active.private, ring.active.kid
    foreign = Ed25519PrivateKey.generate()
    header, payload, sig = valid.split(".")
    tampered_payload = json.loads(base64.urlsafe_b64decode(payload + "=="))
    tampered_payload["role"] = "admin"
    past = datetime.now(UTC) - timedelta(hours=1)
    return {
        "expired": jwt.encode(
            _claims(user_id, iat=int(past.timestamp()), exp=int(past.timestamp()) + 60),
            real,
            algorithm="EdDSA",
            headers={"kid": kid},
        ),
        "tampered signature": f"{header}.{payload}.{sig[:-4]}{'AAAA' if not sig.endswith('AAAA') else 'BBBB'}",
        "tampered claims": f"{header}.{_b64(json.dumps(tampered_payload).encode())}.{sig}",
        "alg none": f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT', 'kid': kid}).encode())}."
        f"{_b64(json.dumps(_claims(user_id)).encode())}.",
        "unknown kid": jwt.encode(_claims(user_id), foreign, algorithm="EdDSA", headers={"kid": "not-a-key"}),
        "foreign key": jwt.encode(_claims(user_id), foreign, algorithm="EdDSA", headers={"kid": kid}),
        "wrong audience": jwt.encode(
            _claims(user_id, aud="someone-else"), real, algorithm="EdDSA", headers={"kid": kid}
        ),
        "wrong issuer": jwt.encode(_claims(user_id, iss="evil"), real, algorithm="EdDSA", headers={"kid": kid}),
        # The services' own audience (issue 26) carries the service role only: an admin claim there is refused.
        "a user's role under the service audience": jwt.encode(
            _claims(user_id, aud="tradesense-internal"), real, algorithm="EdDSA", headers={"kid": kid}
        ),
        "HS256 with public key": jwt.encode(_claims(user_id), "x" * 32, algorithm="HS256", headers={"kid": kid}),
    }


def test_bad_tokens_are_refused_at_the_gateway_and_by_each_service(client: httpx.Client, stack: Stack) -> None:
    s = register_and_login(client)
    assert client.get("/api/auth/me", headers=bearer(s["access_token"])).status_code == 200
    forged = _forgeries(stack, s["access_token"], s["user"]["id"])
    for name, token in forged.items():
        # Envoy answers 401, or 403 for a valid signature with the wrong audience.
        r = client.get("/api/auth/me", headers=bearer(token))
        assert r.status_code in (401, 403), f"gateway accepted {name}"
        r = client.get("/api/auth/users", headers=bearer(token))
        assert r.status_code in (401, 403), f"gateway accepted {name} for an admin route"
    # Sent straight to the services, bypassing Envoy: each verifies for itself.
    md_valid = (("authorization", f"Bearer {s['access_token']}"),)
    with grpc.insecure_channel(stack.grpc_addr("auth")) as a, grpc.insecure_channel(stack.grpc_addr("risk")) as r_:
        auth = auth_pb2_grpc.AuthServiceStub(a)
        risk = risk_pb2_grpc.RiskServiceStub(r_)
        assert auth.GetMe(auth_pb2.GetMeRequest(), metadata=md_valid, timeout=5).email
        assert risk.ListAlerts(risk_pb2.ListAlertsRequest(), metadata=md_valid, timeout=5) is not None
        for name, token in forged.items():
            md = (("authorization", f"Bearer {token}"),)
            for call in (
                lambda md=md: auth.GetMe(auth_pb2.GetMeRequest(), metadata=md, timeout=5),
                lambda md=md: auth.ListUsers(auth_pb2.ListUsersRequest(), metadata=md, timeout=5),
                lambda md=md: risk.ListAlerts(risk_pb2.ListAlertsRequest(), metadata=md, timeout=5),
            ):
                with pytest.raises(grpc.RpcError) as err:
                    call()
                assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, name
        with pytest.raises(grpc.RpcError) as err:  # and no token at all
            auth.GetMe(auth_pb2.GetMeRequest(), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_client_sent_identity_headers_are_ignored(client: httpx.Client) -> None:
    r = client.get("/api/auth/users", headers={"x-user-id": str(uuid.uuid4()), "x-user-role": "admin"})
    assert r.status_code == 401


# --- roles ---------------------------------------------------------------------------------------


def test_trader_cannot_call_admin_rpcs_admin_can(client: httpx.Client, admin: str) -> None:
    trader = register_and_login(client)
    r = client.get("/api/auth/users", headers=bearer(trader["access_token"]))
    assert r.status_code == 403 and reason(r) == "ADMIN_REQUIRED"
    r = client.post(
        f"/api/auth/users/{trader['user']['id']}/role", json={"role": "ADMIN"}, headers=bearer(trader["access_token"])
    )
    assert r.status_code == 403

    r = client.get("/api/auth/users", params={"email_contains": trader["email"]}, headers=bearer(admin))
    assert r.status_code == 200 and [u["id"] for u in r.json()["users"]] == [trader["user"]["id"]]
    # Disabling revokes refresh tokens and blocks login.
    r = client.post(f"/api/auth/users/{trader['user']['id']}/disabled", json={"disabled": True}, headers=bearer(admin))
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert client.post("/api/auth/refresh", json={"refresh_token": trader["refresh_token"]}).status_code == 401
    # ... with the answer a wrong password gets: no answer confirms a password (issue 26).
    r = client.post("/api/auth/login", json={"email": trader["email"], "password": PASSWORD})
    wrong = client.post("/api/auth/login", json={"email": trader["email"], "password": "wrong-password-1"})
    assert r.status_code == wrong.status_code == 401 and reason(r) == "INVALID_CREDENTIALS"
    assert r.json() == wrong.json()
    assert (
        client.post(
            f"/api/auth/users/{uuid.uuid4()}/disabled", json={"disabled": True}, headers=bearer(admin)
        ).status_code
        == 404
    )


def test_list_users_pages_through_everyone(client: httpx.Client, admin: str) -> None:
    for _ in range(3):
        register_and_login(client)
    seen: list[str] = []
    token = ""
    while True:
        r = client.get("/api/auth/users", params={"page_size": 2, "page_token": token}, headers=bearer(admin))
        assert r.status_code == 200
        seen += [u["id"] for u in r.json()["users"]]
        token = r.json()["next_page_token"]
        if not token:
            break
    assert len(seen) == len(set(seen)) >= 4


# --- brute force and enumeration -------------------------------------------------------------------


def test_unknown_email_and_wrong_password_answer_alike(client: httpx.Client) -> None:
    s = register_and_login(client)
    wrong = client.post("/api/auth/login", json={"email": s["email"], "password": "wrong-password-1"})
    unknown = client.post("/api/auth/login", json={"email": new_email(), "password": "wrong-password-1"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def test_lockout_after_repeated_failures_and_recovery(client: httpx.Client) -> None:
    s = register_and_login(client)
    for _ in range(3):  # LOGIN_FREE_FAILURES=3 in the test stack
        assert client.post("/api/auth/login", json={"email": s["email"], "password": "nope-nope-1"}).status_code == 401
    # Locked: even the right password is refused until the lock expires.
    r = client.post("/api/auth/login", json={"email": s["email"], "password": PASSWORD})
    assert r.status_code == 429 and reason(r) == "LOGIN_THROTTLED"
    time.sleep(2.5)  # LOGIN_LOCK_BASE_SECONDS=2
    r = client.post("/api/auth/login", json={"email": s["email"], "password": PASSWORD})
    assert r.status_code == 200, r.text


def test_lockout_survives_an_auth_restart(client: httpx.Client, stack: Stack) -> None:
    s = register_and_login(client)
    bad = {"email": s["email"], "password": "nope-nope-1"}
    for _ in range(3):
        client.post("/api/auth/login", json=bad)
    # Each failure past the free ones doubles the lock: 2 s, 4 s, then 8 s, which
    # outlasts a restart of the service.
    for wait in (2.2, 4.2):
        time.sleep(wait)
        assert client.post("/api/auth/login", json=bad).status_code == 401
    assert client.post("/api/auth/login", json=bad).status_code == 429
    stack.stop_service("auth")
    stack.start_service("auth")
    stack.wait_gateway()
    r = client.post("/api/auth/login", json={"email": s["email"], "password": PASSWORD})
    assert r.status_code == 429  # stored in PostgreSQL, not in memory


async def test_fifty_concurrent_logins_all_succeed(stack: Stack) -> None:
    email = new_email()
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as c:
        assert (await c.post("/api/auth/register", json={"email": email, "password": PASSWORD})).status_code == 200
        results = await asyncio.gather(
            *(
                c.post("/api/auth/login", json={"email": email, "password": PASSWORD, "return_refresh_token": True})
                for _ in range(50)
            )
        )
    assert [r.status_code for r in results] == [200] * 50
    assert len({r.json()["refresh_token"] for r in results}) == 50


# --- service identity and key rotation -------------------------------------------------------------


def test_service_identity_for_internal_methods(client: httpx.Client, stack: Stack) -> None:
    trader = register_and_login(client)
    with grpc.insecure_channel(stack.grpc_addr("auth")) as a, grpc.insecure_channel(stack.grpc_addr("market")) as m:
        auth = auth_pb2_grpc.AuthServiceStub(a)
        market = market_pb2_grpc.MarketServiceStub(m)
        with pytest.raises(grpc.RpcError) as err:
            auth.IssueServiceToken(auth_pb2.IssueServiceTokenRequest(client_id="challenges", client_secret="guess"))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        svc = auth.IssueServiceToken(
            auth_pb2.IssueServiceTokenRequest(client_id="challenges", client_secret=stack.secrets["challenges"])
        )
        claims = jwt.decode(svc.access_token, options={"verify_signature": False})
        assert claims["role"] == "service" and claims["aud"] == "tradesense-internal"
        # Its own audience: the public gateway refuses it (issue 26), the services accept it.
        r = client.get("/api/risk/alerts", headers=bearer(svc.access_token))
        assert r.status_code == 403 and reason(r) == "TOKEN_AUDIENCE"
        quote = market.GetQuote(
            market_pb2.GetQuoteRequest(symbol="EURUSD"),
            metadata=(("authorization", f"Bearer {svc.access_token}"),),
            timeout=5,
        )
        assert quote.price.symbol == "EURUSD"
        with pytest.raises(grpc.RpcError) as err:
            market.GetQuote(
                market_pb2.GetQuoteRequest(symbol="EURUSD"),
                metadata=(("authorization", f"Bearer {trader['access_token']}"),),
                timeout=5,
            )
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_key_rotation_new_key_signs_old_tokens_still_verify(client: httpx.Client, stack: Stack) -> None:
    keys_dir = stack.cfg.base_dir / "auth-keys"
    before = register_and_login(client)
    old_kid = jwt.get_unverified_header(before["access_token"])["kid"]
    new = keyring.add_key(keys_dir, activate=False)  # published, not yet signing
    jwks = client.get("/api/auth/jwks").json()["keys"]
    assert {k["kid"] for k in jwks} >= {old_kid, new.kid}
    assert all(k["kty"] == "OKP" and k["crv"] == "Ed25519" and "d" not in k for k in jwks)
    time.sleep(2.5)  # > the gateway's JWKS cache in the test stack
    (keys_dir / "active").write_text(new.kid + "\n")
    after = register_and_login(client)
    assert jwt.get_unverified_header(after["access_token"])["kid"] == new.kid
    eventually(lambda: client.get("/api/auth/me", headers=bearer(after["access_token"])).status_code == 200, timeout=10)
    assert client.get("/api/auth/me", headers=bearer(before["access_token"])).status_code == 200
    r = client.get("/api/risk/alerts", headers=bearer(after["access_token"]))  # risk fetches the new key itself
    assert r.status_code == 200


def test_sse_routes_accept_the_token_from_cookie_or_header_never_the_query(client: httpx.Client) -> None:
    s = register_and_login(client)
    url = "/api/risk/alerts/stream"
    client.cookies.clear()  # no session cookie from an earlier login on this client
    with client.stream("GET", url) as r:
        assert r.status_code == 401
    for kwargs in ({"cookies": {"access_token": s["access_token"]}}, {"headers": bearer(s["access_token"])}):
        with client.stream("GET", url, **kwargs) as r:  # type: ignore[arg-type]
            assert r.status_code == 200  # past the gateway and the service's own check
    # A URL ends up in histories, proxies' logs and Referer headers: a token there is refused
    # (issue 26), even a valid one.
    with client.stream("GET", url, params={"access_token": s["access_token"]}) as r:
        assert r.status_code == 401 and reason_of_stream(r) == "TOKEN_MISSING"


def reason_of_stream(r: httpx.Response) -> str | None:
    r.read()
    return reason(r)
