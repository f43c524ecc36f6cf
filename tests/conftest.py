"""Shared fixtures: one real PostgreSQL per test session, and the whole stack on free ports.

Everything starts on free ports in a temporary directory, so tests never collide
with a running `make run`. DATABASE_URL points the tests at an existing server instead.
"""

from __future__ import annotations

import concurrent.futures
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devstack.postgres import EmbeddedPostgres
from devstack.stack import Stack, StackConfig, free_port


class Database:
    """A PostgreSQL server the tests may create databases on."""

    def __init__(self, admin_url: str, make_url: Callable[[str], str]) -> None:
        self.admin_url = admin_url
        self._make_url = make_url

    def url(self, database: str) -> str:
        return self._make_url(database)

    def create_database(self) -> str:
        import asyncio

        import asyncpg

        name = "t_" + uuid.uuid4().hex[:12]

        async def create() -> None:
            conn = await asyncpg.connect(self.admin_url)
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        # A thread of its own: callable from sync tests and from inside a running loop.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, create()).result()
        return self.url(name)


@pytest.fixture(scope="session")
def tmp_root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="tradesense-test-") as d:
        yield Path(d)


@pytest.fixture(scope="session")
def database(tmp_root: Path) -> Iterator[Database]:
    external = os.environ.get("DATABASE_URL")
    if external:
        base, _, _ = external.rpartition("/")
        yield Database(external, lambda db: f"{base}/{db}")
        return
    pg = EmbeddedPostgres(tmp_root / "postgres", free_port(), durable=False)
    pg.start(tmp_root / "logs" / "postgres.log")
    try:
        yield Database(pg.admin_url(), pg.admin_url)
    finally:
        pg.stop()


@pytest.fixture(scope="session")
def stack(tmp_root: Path, database: Database) -> Iterator[Stack]:
    """The four services and Envoy, sharing the session's PostgreSQL (a fresh database)."""
    cfg = StackConfig.ephemeral(
        tmp_root / "stack",
        database_url=database.create_database(),
        jwks_cache_seconds=1,  # key-rotation test: the gateway sees a new key quickly
        # Every test client is 127.0.0.1 here: the per-client auth bucket is tested on a stack
        # of its own (tests/e2e/test_abuse.py).
        auth_rate_limit_per_client=(100_000, 100_000),
        cors_origins=("https://app.example.com",),  # tests/e2e/test_browser_contract.py
        env={
            # Short lock-outs so a test can see one expire; every test shares 127.0.0.1,
            # so the per-address limit is raised here and tested on its own.
            "LOGIN_FREE_FAILURES": "3",
            "LOGIN_LOCK_BASE_SECONDS": "2",
            "LOGIN_ADDRESS_FREE_FAILURES": "10000",
            # Futures trade on Globex hours; the tests of futures accounts run at any hour.
            "MARKET_ALWAYS_OPEN": "GLOBEX",
            # Quiet browser streams beat every second, so a test sees one (15 s in production).
            "SSE_HEARTBEAT_SECONDS": "1",
            # The fuzzers and the crash tests trade as fast as they can: the per-user quotas are
            # tried at their defaults on a stack of their own (tests/e2e/test_security_review.py).
            "ORDERS_PER_SECOND": "0",
            "MAX_LIVE_CHALLENGES": "0",
        },
    )
    with Stack(cfg) as s:
        yield s
