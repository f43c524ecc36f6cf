"""Small helpers for end-to-end tests: a browser-like REST client."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from devstack.stack import Stack

PASSWORD = "correct-horse-battery-42"


def eventually(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy (returned), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"not reached in time (last: {last})")


def new_email() -> str:
    return f"trader-{uuid.uuid4().hex[:10]}@example.com"


def register_and_login(client: httpx.Client, email: str | None = None) -> dict[str, Any]:
    email = email or new_email()
    r = client.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    # An API client asks for the refresh token in the body (a browser never gets it there, nor a
    # request carrying session cookies: a shared client may hold some from an earlier login).
    client.cookies.clear()
    r = client.post("/api/auth/login", json={"email": email, "password": PASSWORD, "return_refresh_token": True})
    assert r.status_code == 200, r.text
    # An API client: it presents the token it was given, not the browser's session cookies
    # (a shared client that kept them would send one trader's cookie with every later call).
    client.cookies.clear()
    body: dict[str, Any] = r.json()
    body["email"] = email
    return body


def reason(r: httpx.Response) -> str | None:
    """The stable `reason` of an error answer's google.rpc.ErrorInfo detail."""
    for d in r.json().get("details", []):
        if d.get("@type", "").endswith("ErrorInfo"):
            return str(d.get("reason"))
    return None


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def admin_headers(client: httpx.Client, stack: Stack) -> dict[str, str]:
    """The bootstrap administrator's bearer header on `stack`."""
    r = client.post("/api/auth/login", json={"email": stack.admin_email, "password": stack.admin_password})
    assert r.status_code == 200, r.text
    client.cookies.clear()  # as register_and_login
    return bearer(r.json()["access_token"])


def sse_frames(response: httpx.Response) -> Iterator[tuple[str | None, str, dict[str, Any] | None]]:
    """A Server-Sent Events stream as (id, event type, data), comments (heartbeats) as
    (None, ":", None), as a browser's EventSource parses it."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line.startswith(":"):
            yield None, ":", None
        elif line == "":
            if "data" in fields or "event" in fields:
                data = json.loads(fields["data"]) if "data" in fields else None
                yield fields.get("id"), fields.get("event", "message"), data
            fields = {}
        else:
            key, _, value = line.partition(":")
            fields[key] = value[1:] if value.startswith(" ") else value


def sse_events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The data of each event of a Server-Sent Events stream, until its `end`."""
    for _, event, data in sse_frames(response):
        if event == "end":
            return
        if data is not None:
            yield data


def gauge(stack: Stack, process: str, name: str) -> float | None:
    """An unlabelled metric of one process of the stack (None when it does not export it);
    an unreachable process raises httpx.HTTPError."""
    for line in httpx.get(stack.metrics_url(process), timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None
