"""One pooled async engine per process, bound to the service's own schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from services.common.config import ServiceSettings


def _drop_closed_on_checkout(engine: AsyncEngine) -> None:
    """A connection the server closed (a database restart) is replaced at checkout, with a
    local check and no round trip; the hot paths use the driver directly, so SQLAlchemy
    would otherwise never learn it is dead."""

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        raw = getattr(dbapi_connection, "_connection", None)
        if raw is not None and raw.is_closed():
            raise DisconnectionError("connection closed by the server")


def create_engine(settings: ServiceSettings, pool_size: int | None = None) -> AsyncEngine:
    """The service's pool (`pool_size`: a small one of its own, e.g. a lease's connection)."""
    # search_path pins every connection to the service's schema: a service cannot
    # accidentally read another service's tables by an unqualified name.
    engine = create_async_engine(
        settings.async_database_url,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=0 if pool_size else settings.db_max_overflow,
        # No ping per checkout (a round trip per transaction on the order path): a
        # connection broken by a database restart fails once, SQLAlchemy invalidates the
        # pool, and the error interceptor answers UNAVAILABLE so clients retry.
        pool_pre_ping=False,
        pool_recycle=1800,
        # A statement's parameters never appear in an error's text (hence in logs or Sentry):
        # they include password hashes, tokens and whatever a client sent.
        hide_parameters=True,
        connect_args={
            "server_settings": {
                "search_path": settings.schema_name,
                "application_name": settings.service_name,
                "timezone": "UTC",
                # No statement runs away with a connection, and no transaction is left open
                # by a client that stopped reading (the server ends the session instead).
                "statement_timeout": str(settings.db_statement_timeout_ms),
                "idle_in_transaction_session_timeout": str(settings.db_idle_in_transaction_timeout_ms),
            }
        },
    )
    _drop_closed_on_checkout(engine)
    return engine


async def driver_connection(conn: AsyncConnection) -> asyncpg.Connection:
    """The pool's own asyncpg connection under a SQLAlchemy one, for hot paths that
    skip Core's per-statement overhead (same pool, same search_path)."""
    raw = (await conn.get_raw_connection()).driver_connection
    assert raw is not None
    return raw


@asynccontextmanager
async def driver(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection's asyncpg driver for the span of a block (returned to the pool after)."""
    async with engine.connect() as conn:
        yield await driver_connection(conn)
