"""Fixtures of the integration tests that work on the challenges schema directly."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.challenges import store
from services.challenges.domain.packs import BUILT_IN
from services.challenges.domain.plans import PLANS
from services.challenges.server import SPEC
from services.common.config import ServiceSettings
from services.common.db import create_engine
from services.common.migrations import migrate
from tests.conftest import Database


@pytest.fixture
async def engine(database: Database) -> AsyncIterator[AsyncEngine]:
    url = database.create_database()
    engine = create_engine(ServiceSettings(service_name=SPEC.name, database_url=url))  # type: ignore[arg-type]
    await migrate(engine, SPEC.name, SPEC.migrations)
    async with engine.begin() as conn:
        await store.seed(conn, BUILT_IN, PLANS)
    yield engine
    await engine.dispose()
