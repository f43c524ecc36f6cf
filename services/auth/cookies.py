"""The browser's session cookies: HttpOnly, SameSite=Strict, set with every token pair.

`access_token` (Path=/api) is what a browser's EventSource presents on the SSE routes and the
exports, which cannot send an Authorization header (the gateway's sse_token.lua reads it there
and nowhere else); `refresh_token` (Path=/api/auth) lets every tab of one browser refresh the
session through the one cookie, so a console never keeps a token where script can read it. Both
are sent back as gRPC initial metadata, which the gateway's transcoder turns into Set-Cookie
headers. SameSite=Strict: another site's page never sends them; the gateway also refuses them
from an origin it does not list (gateway/request_checks.lua).

Behind TLS they are named with the `__Secure-` prefix, which browsers accept only with the
Secure flag from a secure origin, so a network attacker on plain HTTP cannot plant one.
(`__Host-` would also forbid a Domain, but needs Path=/: the refresh token would then travel
with every request, not only to /api/auth.) Plain-HTTP local runs use the bare names.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

ACCESS, REFRESH = "access_token", "refresh_token"
SECURE_PREFIX = "__Secure-"

# Headers only a browser sends (fetch metadata, CORS): such a caller never gets a token in a body.
_BROWSER_HEADERS = ("origin", "sec-fetch-site", "sec-fetch-mode")


def _name(name: str, secure: bool) -> str:
    return SECURE_PREFIX + name if secure else name


def _cookie(name: str, value: str, path: str, max_age: int, secure: bool) -> tuple[str, str]:
    attrs = f"{_name(name, secure)}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict"
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


def _pairs(metadata: Sequence[tuple[str, Any]] | None) -> Iterator[tuple[str, str]]:
    for key, value in metadata or ():
        if key != "cookie" or not isinstance(value, str):
            continue
        for pair in value.split(";"):
            k, _, v = pair.strip().partition("=")
            if v:
                yield k, v


def read(metadata: Sequence[tuple[str, Any]] | None, name: str) -> str:
    """A session cookie the request carries, under either name (the gateway forwards the
    Cookie header as metadata)."""
    for k, v in _pairs(metadata):
        if k in (name, SECURE_PREFIX + name):
            return v
    return ""


def from_browser(metadata: Sequence[tuple[str, Any]] | None) -> bool:
    """A browser's request: it sends fetch-metadata or Origin headers, or our cookies."""
    if any(key in _BROWSER_HEADERS for key, _ in metadata or ()):
        return True
    return any(read(metadata, n) for n in (ACCESS, REFRESH))
