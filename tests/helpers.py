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
    r = client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
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
    return bearer(r.json()["access_token"])


def sse_events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """Parse `data: {...}` lines of a Server-Sent Events stream."""
    for line in response.iter_lines():
        if line.startswith("data:"):
            yield json.loads(line[len("data:") :].strip())


def gauge(stack: Stack, process: str, name: str) -> float | None:
    """An unlabelled metric of one process of the stack (None when it does not export it);
    an unreachable process raises httpx.HTTPError."""
    for line in httpx.get(stack.metrics_url(process), timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None
