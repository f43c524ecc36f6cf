"""Who is calling: set by the auth interceptor, read by handlers."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from services.common.errors import permission_denied, unauthenticated


@dataclass(frozen=True)
class Caller:
    user_id: str
    role: str  # "trader" | "admin" | "service"
    token: str  # the verified access token, forwarded on calls made for this caller
    session_id: str = ""  # the refresh family it was issued in ("" for service tokens)
    issued_ms: int = 0  # when it was issued, Unix milliseconds

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def __repr__(self) -> str:  # never print the token
        return f"Caller(user_id={self.user_id!r}, role={self.role!r})"


_caller: ContextVar[Caller | None] = ContextVar("caller", default=None)


def current() -> Caller | None:
    return _caller.get()


def require() -> Caller:
    caller = _caller.get()
    if caller is None:
        raise unauthenticated()
    return caller


def require_admin() -> Caller:
    caller = require()
    if not caller.is_admin:
        raise permission_denied("admin role required", reason="ADMIN_REQUIRED")
    return caller


def bind(caller: Caller | None) -> object:
    return _caller.set(caller)
