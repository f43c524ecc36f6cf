"""Access tokens stop working within seconds of logout, disabling, demotion and a password
change, in every service, and the user's open streams end (issue 16, item 5). Before, an
access token kept working for the rest of its 15 minutes."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from devstack.stack import Stack
from tests.e2e.test_challenges import new_challenge
from tests.helpers import PASSWORD, admin_headers, bearer, reason, register_and_login

pytestmark = pytest.mark.e2e

WITHIN = 5.0  # seconds


@pytest.fixture(scope="module")
def client(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.gateway_url, timeout=30)


def _refused_everywhere_within(client: httpx.Client, token: str, cid: str) -> float:
    """Seconds until the token is refused by challenges, risk and market's authenticated
    calls alike (each service checks it itself)."""
    start = time.monotonic()
    paths = [f"/api/challenges/{cid}", f"/api/risk/metrics/{cid}", "/api/auth/me"]
    while time.monotonic() - start < WITHIN + 2:
        answers = [client.get(p, headers=bearer(token)) for p in paths]
        if all(r.status_code == 401 for r in answers):
            assert {reason(r) for r in answers} == {"TOKEN_REVOKED"}
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"still accepted: {[(p, r.status_code) for p, r in zip(paths, answers, strict=True)]}")


class Stream(threading.Thread):
    """An open SSE stream of one challenge's events; records how it ended."""

    def __init__(self, stack: Stack, token: str, cid: str) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.cid = stack.gateway_url, token, cid
        self.opened = threading.Event()
        self.ended: float | None = None
        self.lines: list[str] = []

    def run(self) -> None:
        path = f"/api/challenges/{self.cid}/events/stream"
        with httpx.Client(base_url=self.url, timeout=60) as c, c.stream("GET", path, headers=bearer(self.token)) as r:
            self.opened.set()
            for line in r.iter_lines():
                self.lines.append(line)
        self.ended = time.monotonic()


def test_logout_cuts_off_the_sessions_access_token_and_its_streams(client: httpx.Client, stack: Stack) -> None:
    me = register_and_login(client)
    cid = new_challenge(client, me)["id"]
    other = client.post("/api/auth/login", json={"email": me["email"], "password": PASSWORD}).json()
    stream = Stream(stack, me["access_token"], cid)
    stream.start()
    assert stream.opened.wait(10)
    time.sleep(0.5)
    assert stream.ended is None
    logged_out = time.monotonic()
    r = client.post("/api/auth/logout", json={"refresh_token": me["refresh_token"]})
    assert r.status_code == 200
    took = _refused_everywhere_within(client, me["access_token"], cid)
    assert took < WITHIN
    stream.join(WITHIN + 2)
    assert stream.ended is not None and stream.ended - logged_out < WITHIN + 1
    # Another session of the same user goes on.
    assert client.get("/api/auth/me", headers=bearer(other["access_token"])).status_code == 200


def test_a_password_change_cuts_off_every_session_and_a_new_login_works_at_once(client: httpx.Client) -> None:
    me = register_and_login(client)
    cid = new_challenge(client, me)["id"]
    new = "another-horse-battery-7"
    r = client.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": new},
        headers=bearer(me["access_token"]),
    )
    assert r.status_code == 200, r.text
    fresh = client.post("/api/auth/login", json={"email": me["email"], "password": new}).json()
    assert _refused_everywhere_within(client, me["access_token"], cid) < WITHIN
    assert client.get(f"/api/challenges/{cid}", headers=bearer(fresh["access_token"])).status_code == 200


def test_disabling_and_demoting_cut_off_the_users_tokens(client: httpx.Client, stack: Stack) -> None:
    admin = admin_headers(client, stack)
    victim = register_and_login(client)
    cid = new_challenge(client, victim)["id"]
    r = client.post(f"/api/auth/users/{victim['user']['id']}/disabled", json={"disabled": True}, headers=admin)
    assert r.status_code == 200
    assert _refused_everywhere_within(client, victim["access_token"], cid) < WITHIN

    # A second administrator, demoted: the admin token stops working as one (and at all).
    boss = register_and_login(client)
    role = {"role": "ADMIN"}
    assert client.post(f"/api/auth/users/{boss['user']['id']}/role", json=role, headers=admin).status_code == 200
    promoted: dict[str, Any] = client.post(
        "/api/auth/login", json={"email": boss["email"], "password": PASSWORD}
    ).json()
    h = bearer(promoted["access_token"])
    assert client.get("/api/auth/users", headers=h).status_code == 200
    r = client.post(f"/api/auth/users/{boss['user']['id']}/role", json={"role": "TRADER"}, headers=admin)
    assert r.status_code == 200
    start = time.monotonic()
    while client.get("/api/auth/users", headers=h).status_code != 401:
        assert time.monotonic() - start < WITHIN, "the demoted admin's token still works"
        time.sleep(0.1)
