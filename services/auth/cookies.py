"""The browser's session cookies: HttpOnly, SameSite=Strict, set with every token pair.

`access_token` (Path=/api) is what a browser's EventSource presents on the SSE routes, which
cannot send an Authorization header (the gateway's sse_token.lua reads it there and nowhere
else); `refresh_token` (Path=/api/auth) lets every tab of one browser refresh the session
through the one cookie, so a console never keeps a token where script can read it. Both are
sent back as gRPC initial metadata, which the gateway's transcoder turns into Set-Cookie
headers. SameSite=Strict: another site's page never sends them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

ACCESS, REFRESH = "access_token", "refresh_token"


def _cookie(name: str, value: str, path: str, max_age: int, secure: bool) -> tuple[str, str]:
    attrs = f"{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict"
    return "set-cookie", attrs + ("; Secure" if secure else "")


def issued(
    access: str, refresh: str, access_ttl: timedelta, refresh_ttl: timedelta, secure: bool
) -> list[tuple[str, str]]:
    return [
        _cookie(ACCESS, access, "/api", int(access_ttl.total_seconds()), secure),
        _cookie(REFRESH, refresh, "/api/auth", int(refresh_ttl.total_seconds()), secure),
    ]


def cleared(secure: bool) -> list[tuple[str, str]]:
    return [_cookie(ACCESS, "", "/api", 0, secure), _cookie(REFRESH, "", "/api/auth", 0, secure)]


def read(metadata: Sequence[tuple[str, Any]] | None, name: str) -> str:
    """A cookie the request carries (the gateway forwards the Cookie header as metadata)."""
    for key, value in metadata or ():
        if key != "cookie" or not isinstance(value, str):
            continue
        for pair in value.split(";"):
            k, _, v = pair.strip().partition("=")
            if k == name and v:
                return v
    return ""
