"""Per-service schemas and migrations against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import sys

import pytest
from sqlalchemy import text

from services.auth.server import SPEC as AUTH
from services.challenges.server import SPEC as CHALLENGES
from services.common.config import ServiceSettings
from services.common.db import create_engine
from services.common.migrations import migrate
from services.market.server import SPEC as MARKET
from services.risk.server import SPEC as RISK
from tests.conftest import Database

pytestmark = pytest.mark.integration


_MIGRATE = """
import asyncio, sys
from services.common.config import ServiceSettings
from services.common.db import create_engine
from services.common.migrations import migrate
from services.{name}.server import SPEC
async def main():
    engine = create_engine(ServiceSettings(service_name=SPEC.name, database_url=sys.argv[1]))
    await migrate(engine, SPEC.name, SPEC.migrations)
    await engine.dispose()
asyncio.run(main())
"""


async def test_each_service_migrates_its_own_schema_concurrently_and_idempotently(database: Database) -> None:
    url = database.create_database()
    engines = []
    try:
        # Two replicas of every service starting at once, as separate processes.
        procs = [
            await asyncio.create_subprocess_exec(sys.executable, "-c", _MIGRATE.format(name=spec.name), url)
            for spec in (AUTH, CHALLENGES, MARKET, RISK)
            for _ in range(2)
        ]
        assert [await p.wait() for p in procs] == [0] * 8
        engine = create_engine(ServiceSettings(service_name="auth", database_url=url))  # type: ignore[arg-type]
        engines.append(engine)
        await migrate(engine, AUTH.name, AUTH.migrations)  # and again: a no-op

        async with engines[0].connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT table_schema, table_name FROM information_schema.tables "
                        "WHERE table_schema IN ('auth','challenges','market','risk')"
                    )
                )
            ).all()
        tables = {(s, t) for s, t in rows}
        assert ("auth", "users") in tables and ("market", "instruments") in tables
        assert ("challenges", "plans") in tables and ("risk", "alerts") in tables
        for schema in ("auth", "challenges", "market", "risk"):
            assert (schema, "alembic_version") in tables  # each schema versions itself
        assert not any(t == "users" and s != "auth" for s, t in tables)
    finally:
        for e in engines:
            await e.dispose()


async def test_engine_is_pinned_to_its_schema(database: Database) -> None:
    url = database.create_database()
    engine = create_engine(ServiceSettings(service_name="market", database_url=url))  # type: ignore[arg-type]
    try:
        await migrate(engine, "market", MARKET.migrations)
        async with engine.connect() as conn:
            assert (await conn.execute(text("SHOW search_path"))).scalar() == "market"
            assert (await conn.execute(text("SELECT count(*) FROM instruments"))).scalar() == 0
    finally:
        await engine.dispose()
