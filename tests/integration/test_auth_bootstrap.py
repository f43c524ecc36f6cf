"""The first administrator (issue 26): AUTH_BOOTSTRAP_ADMIN_EMAIL creates the account once; it
never promotes an account someone registered with that address (the service refuses to start,
saying why), and never brings back an admin that was demoted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.auth import store
from services.auth.domain.passwords import Hasher
from services.auth.server import SPEC, BootstrapRefused, ensure_admin
from services.common.config import ServiceSettings
from services.common.db import create_engine
from services.common.migrations import migrate
from tests.conftest import Database

pytestmark = pytest.mark.integration

EMAIL = "root@firm.example"
HASHER = Hasher(time_cost=1, memory_cost=8192)


@pytest.fixture
async def engine(database: Database) -> AsyncIterator[AsyncEngine]:
    url = database.create_database()
    engine = create_engine(ServiceSettings(service_name=SPEC.name, database_url=url))  # type: ignore[arg-type]
    await migrate(engine, SPEC.name, SPEC.migrations)
    yield engine
    await engine.dispose()


async def _user(engine: AsyncEngine) -> dict[str, object]:
    async with engine.connect() as conn:
        row = await store.user_by_email_key(conn, EMAIL)
    assert row is not None
    return dict(row)


async def test_the_bootstrap_creates_the_admin_once_and_leaves_it_alone(engine: AsyncEngine) -> None:
    await ensure_admin(engine, HASHER, EMAIL, "first-password-of-root")
    first = await _user(engine)
    assert first["role"] == "admin"
    # A restart with another password in the variable: the admin's own password stays.
    await ensure_admin(engine, HASHER, EMAIL, "another-password-entirely")
    again = await _user(engine)
    assert again["password_hash"] == first["password_hash"]
    assert HASHER.verify(str(again["password_hash"]), "first-password-of-root")


async def test_an_account_registered_with_the_address_is_never_promoted(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await store.insert_user(
            conn, email=EMAIL, email_key=EMAIL, display_name="", password_hash="x", now=datetime.now(UTC)
        )
    with pytest.raises(BootstrapRefused):
        await ensure_admin(engine, HASHER, EMAIL, "first-password-of-root")
    assert (await _user(engine))["role"] == "trader"


async def test_a_demoted_admin_does_not_come_back_at_the_next_start(engine: AsyncEngine) -> None:
    await ensure_admin(engine, HASHER, EMAIL, "first-password-of-root")
    user = await _user(engine)
    async with engine.begin() as conn:
        await store.update_user(conn, user["id"], datetime.now(UTC), role="trader")  # type: ignore[arg-type]
    with pytest.raises(BootstrapRefused):
        await ensure_admin(engine, HASHER, EMAIL, "first-password-of-root")
    assert (await _user(engine))["role"] == "trader"
