"""Per-service Alembic migrations, applied at start-up under an advisory lock.

Each service keeps its revisions in `services/<name>/migrations/` and its version
table inside its own schema, so schemas evolve independently. The lock makes
concurrent replicas wait for the first one instead of racing.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine


def _quote_ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"bad schema name {name!r}")
    return f'"{name}"'


def _upgrade(conn: Connection, schema: str, script_location: Path) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.attributes["connection"] = conn
    cfg.attributes["schema"] = schema
    command.upgrade(cfg, "head")


# Alembic's migration context is process-global: one upgrade at a time per process.
# Across processes (replicas) the advisory lock below does the serialising.
_in_process = asyncio.Lock()


async def migrate(engine: AsyncEngine, schema: str, script_location: Path) -> None:
    async with _in_process, engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"migrate:{schema}"})
        await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {_quote_ident(schema)}"))
        await conn.execute(text(f"SET LOCAL search_path TO {_quote_ident(schema)}"))
        # A migration may rewrite a big table: the services' statement timeout is not for it.
        await conn.execute(text("SET LOCAL statement_timeout = 0"))
        await conn.run_sync(_upgrade, schema, script_location)


def run_env() -> None:
    """Body of every service's migrations/env.py."""
    config = context.config
    conn: Any = config.attributes["connection"]
    schema: str = config.attributes["schema"]
    context.configure(
        connection=conn,
        target_metadata=None,
        version_table="alembic_version",
        version_table_schema=schema,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def execute_script(sql: str) -> None:
    """Run a migration's DDL script one statement at a time.

    asyncpg prepares each statement, and a prepared statement holds one command.
    Statements end with `;` at the end of a line; keep function bodies out of these scripts.
    """
    from alembic import op

    for statement in re.split(r";[ \t]*(?:--[^\n]*)?\n", sql + "\n"):
        if statement.strip() and not all(
            line.strip().startswith("--") or not line.strip() for line in statement.splitlines()
        ):
            op.execute(statement)


def create_partition_leases(partitions: int) -> None:
    """The tables of the partition-lease kit (services/common/partition_leases.py), one lease row
    per partition: for a service whose replicas split work by partition."""
    from alembic import op

    execute_script(
        """
        CREATE TABLE replicas (
            owner   text PRIMARY KEY,
            seen_at timestamptz NOT NULL
        );
        CREATE TABLE partition_leases (
            partition  integer PRIMARY KEY,
            owner      text NOT NULL DEFAULT '',
            expires_at timestamptz NOT NULL DEFAULT '-infinity'
        );
        """
    )
    op.execute(f"INSERT INTO partition_leases (partition) SELECT generate_series(0, {partitions - 1})")


def add_replica_liveness() -> None:
    """The key of the session advisory lock each replica holds while it lives (NULL: a replica
    that holds none, judged by its leases' expiry alone)."""
    from alembic import op

    op.execute("ALTER TABLE replicas ADD COLUMN liveness_key integer")


def drop_replica_liveness() -> None:
    from alembic import op

    op.execute("ALTER TABLE replicas DROP COLUMN liveness_key")
