"""Access-token verification shared by every service.

Tokens are EdDSA JWTs signed by auth; the public keys come from auth's JWKS
(fetched over gRPC and cached; an unknown `kid` triggers a rate-limited refetch, so
rotation needs no restart). Algorithm, issuer, audience and expiry are pinned:
`alg: none`, HMAC confusion, foreign keys and other audiences all fail here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import jwt
from jwt import PyJWK

from services.common.errors import ServiceError, unauthenticated
from services.common.identity import Caller

JwksFetcher = Callable[[], Awaitable[list[dict[str, str]]]]

ROLES = {"trader", "admin", "service"}


class KeySet:
    """kid -> public key, refreshed from a fetcher when an unknown kid shows up."""

    def __init__(self, fetch: JwksFetcher, min_refresh_interval: float = 5.0, max_age: float = 300.0) -> None:
        self._fetch = fetch
        self._keys: dict[str, Any] = {}
        self.generation = 0
        self._last_fetch = 0.0
        self._loaded_at = 0.0
        self._min_interval = min_refresh_interval
        self._max_age = max_age  # retired keys stop verifying within this time
        self._lock = asyncio.Lock()

    def load(self, jwks: list[dict[str, str]]) -> None:
        self.generation += 1
        keys = {}
        for jwk in jwks:
            if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519" and jwk.get("kid"):
                keys[jwk["kid"]] = PyJWK.from_dict(dict(jwk), algorithm="EdDSA").key
        self._keys = keys
        self._loaded_at = time.monotonic()

    async def get(self, kid: str) -> Any | None:
        key = self._keys.get(kid)
        if key is not None and time.monotonic() - self._loaded_at < self._max_age:
            return key
        if key is not None:  # stale set: refresh, but keep serving it if auth is unreachable
            try:
                async with self._lock:
                    if time.monotonic() - self._loaded_at >= self._max_age:
                        self.load(await self._fetch())
            except Exception:
                self._loaded_at = time.monotonic() - self._max_age + self._min_interval
            return self._keys.get(kid)
        async with self._lock:
            key = self._keys.get(kid)
            if key is None and time.monotonic() - self._last_fetch >= self._min_interval:
                self._last_fetch = time.monotonic()
                try:
                    self.load(await self._fetch())
                except Exception as exc:  # auth unreachable: cannot verify, not the caller's fault
                    raise ServiceError(
                        grpc.StatusCode.UNAVAILABLE,
                        "cannot verify tokens right now",
                        reason="JWKS_UNAVAILABLE",
                    ) from exc
                key = self._keys.get(kid)
            return key


class TokenVerifier:
    def __init__(
        self,
        keys: KeySet,
        issuer: str,
        audience: str,
        leeway: float = 5.0,
        cache_size: int = 10_000,
        service_audience: str = "tradesense-internal",
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.service_audience = service_audience
        self.leeway = leeway
        # Verified tokens, until they expire: a signature check costs more than the rest of
        # a small RPC, and browsers send the same token for many requests.
        self._cache: dict[str, tuple[Caller, float]] = {}
        self._cache_size = cache_size
        self._generation = keys.generation

    async def verify(self, token: str) -> Caller:
        if self._generation != self.keys.generation:
            self._cache.clear()  # keys changed (rotation, retirement): verify afresh
            self._generation = self.keys.generation
        hit = self._cache.get(token)
        if hit is not None:
            if time.time() < hit[1] and time.monotonic() - self.keys._loaded_at < self.keys._max_age:
                return hit[0]
            del self._cache[token]
        caller, exp = await self._verify(token)
        if len(self._cache) >= self._cache_size:
            self._cache.pop(next(iter(self._cache)))  # oldest first (insertion order)
        self._cache[token] = (caller, exp)
        return caller

    async def _verify(self, token: str) -> tuple[Caller, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise unauthenticated("malformed token", reason="TOKEN_INVALID") from None
        if header.get("alg") != "EdDSA":
            raise unauthenticated("unsupported token algorithm", reason="TOKEN_INVALID")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise unauthenticated("token has no key id", reason="TOKEN_INVALID")
        key = await self.keys.get(kid)
        if key is None:
            raise unauthenticated("token signed by an unknown key", reason="TOKEN_INVALID")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],
                audience=[self.audience, self.service_audience],
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "sub", "iss", "aud", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthenticated("token expired", reason="TOKEN_EXPIRED") from None
        except jwt.PyJWTError:
            raise unauthenticated("invalid token", reason="TOKEN_INVALID") from None
        role = claims.get("role")
        if role not in ROLES:
            raise unauthenticated("invalid token", reason="TOKEN_INVALID")
        # The service audience carries the service role and nothing else. (A service token of the
        # public audience is one auth minted before the split: the gateway still takes it, the
        # services too, until it expires — auth mints none now, so a rolling upgrade never
        # refuses a replica's calls for the ACCESS_TOKEN_TTL its token has left.)
        if claims["aud"] == self.service_audience and role != "service":
            raise unauthenticated("invalid token", reason="TOKEN_INVALID")
        # Cached until expiry, and never past the key set's refresh, so a retired key's
        # tokens stop verifying when the set is reloaded.
        issued = claims.get("iat_ms")
        caller = Caller(
            user_id=str(claims["sub"]),
            role=str(role),
            token=token,
            session_id=str(claims.get("sid", "")),
            issued_ms=issued if type(issued) is int else int(claims["iat"]) * 1000,
        )
        return caller, float(claims["exp"])
