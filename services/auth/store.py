"""auth's tables and queries (SQLAlchemy Core; schema owned by migrations/)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    Uuid,
    and_,
    case,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("email", Text, nullable=False),
    Column("email_key", Text, nullable=False, unique=True),
    Column("display_name", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

registration_keys = Table(
    "registration_keys",
    metadata,
    Column("idempotency_key", Text, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("request_hash", Text, nullable=False),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("family_id", Uuid, nullable=False),
    Column("user_id", Uuid, nullable=False),
    Column("token_hash", LargeBinary, nullable=False, unique=True),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("rotated_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Column("session_started_at", DateTime(timezone=True), nullable=False),
)

login_throttle = Table(
    "login_throttle",
    metadata,
    Column("key", Text, primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("locked_until", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


async def insert_user(
    conn: AsyncConnection, *, email: str, email_key: str, display_name: str, password_hash: str, now: datetime
) -> RowMapping | None:
    """Insert, or None when the email is taken (the unique key decides, not a read first)."""
    stmt = (
        insert(users)
        .values(
            id=uuid.uuid4(),
            email=email,
            email_key=email_key,
            display_name=display_name,
            password_hash=password_hash,
            role="trader",
            disabled=False,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["email_key"])
        .returning(*users.c)
    )
    return (await conn.execute(stmt)).mappings().first()


async def user_by_email_key(conn: AsyncConnection, email_key: str) -> RowMapping | None:
    return (await conn.execute(select(users).where(users.c.email_key == email_key))).mappings().first()


async def user_by_id(conn: AsyncConnection, user_id: uuid.UUID, *, for_update: bool = False) -> RowMapping | None:
    stmt = select(users).where(users.c.id == user_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await conn.execute(stmt)).mappings().first()


async def update_user(conn: AsyncConnection, user_id: uuid.UUID, now: datetime, **values: Any) -> RowMapping | None:
    stmt = update(users).where(users.c.id == user_id).values(updated_at=now, **values).returning(*users.c)
    return (await conn.execute(stmt)).mappings().first()


async def list_users(
    conn: AsyncConnection, *, limit: int, after: tuple[datetime, uuid.UUID] | None, email_contains: str
) -> list[RowMapping]:
    stmt = select(users).order_by(users.c.created_at, users.c.id).limit(limit)
    if after is not None:
        stmt = stmt.where(
            (users.c.created_at > after[0]) | (and_(users.c.created_at == after[0], users.c.id > after[1]))
        )
    if email_contains:
        stmt = stmt.where(users.c.email_key.contains(email_contains.casefold(), autoescape=True))
    return list((await conn.execute(stmt)).mappings().all())


async def count_active_admins(conn: AsyncConnection, *, lock: bool = False) -> int:
    """Enabled admins; `lock` serialises changes to them (two admins demoting each other at once)."""
    if lock:
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('auth-admins'))"))
    stmt = select(users.c.id).where(users.c.role == "admin", users.c.disabled.is_(False))
    return len((await conn.execute(stmt)).all())


async def registration_for_key(conn: AsyncConnection, key: str) -> RowMapping | None:
    stmt = select(registration_keys).where(registration_keys.c.idempotency_key == key)
    return (await conn.execute(stmt)).mappings().first()


async def remember_registration(conn: AsyncConnection, key: str, user_id: uuid.UUID, request_hash: str) -> bool:
    stmt = (
        insert(registration_keys)
        .values(idempotency_key=key, user_id=user_id, request_hash=request_hash)
        .on_conflict_do_nothing()
    )
    return (await conn.execute(stmt)).rowcount == 1


# --- refresh tokens -------------------------------------------------------------------


async def insert_refresh(
    conn: AsyncConnection,
    *,
    family_id: uuid.UUID,
    user_id: uuid.UUID,
    token_hash: bytes,
    now: datetime,
    expires_at: datetime,
    session_started_at: datetime,
) -> None:
    await conn.execute(
        refresh_tokens.insert().values(
            id=uuid.uuid4(),
            family_id=family_id,
            user_id=user_id,
            token_hash=token_hash,
            issued_at=now,
            expires_at=expires_at,
            session_started_at=session_started_at,
        )
    )


async def refresh_by_hash(conn: AsyncConnection, token_hash: bytes) -> RowMapping | None:
    # Row lock: two concurrent refreshes of one token serialise; the second sees it rotated.
    stmt = select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash).with_for_update()
    return (await conn.execute(stmt)).mappings().first()


async def mark_rotated(conn: AsyncConnection, token_id: uuid.UUID, now: datetime) -> None:
    await conn.execute(update(refresh_tokens).where(refresh_tokens.c.id == token_id).values(rotated_at=now))


async def revoke_family(conn: AsyncConnection, family_id: uuid.UUID, now: datetime) -> None:
    await conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def revoke_user_tokens(conn: AsyncConnection, user_id: uuid.UUID, now: datetime) -> None:
    await conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.user_id == user_id, refresh_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


# --- login throttling -------------------------------------------------------------------


async def throttle_state(conn: AsyncConnection, keys: list[str]) -> dict[str, RowMapping]:
    rows = (await conn.execute(select(login_throttle).where(login_throttle.c.key.in_(keys)))).mappings()
    return {r["key"]: r for r in rows}


async def record_failure(conn: AsyncConnection, key: str, now: datetime, window: timedelta) -> int:
    """Count a failure; failures older than `window` are forgotten."""
    stmt = (
        insert(login_throttle)
        .values(key=key, failures=1, updated_at=now)
        .on_conflict_do_update(
            index_elements=["key"],
            set_={
                "failures": case(
                    (login_throttle.c.updated_at < now - window, 1),
                    else_=login_throttle.c.failures + 1,
                ),
                "updated_at": now,
            },
        )
        .returning(login_throttle.c.failures)
    )
    return int((await conn.execute(stmt)).scalar_one())


# One statement counts an attempt *before* its password is checked, and locks the key as
# soon as the count reaches the policy's free failures: concurrent guesses queue on the row
# and each sees the count the one before it left, so at most `free` are ever checked
# (checked after the fact, 40 concurrent guesses had 18-28 checked). A locked key counts
# nothing and returns no row. A correct password clears the key (clear_throttle).
_RESERVE = text(
    """
    WITH p AS (
      SELECT CAST(:key AS text) AS key, CAST(:now AS timestamptz) AS now, CAST(:stale AS timestamptz) AS stale,
             CAST(:free AS integer) AS free, CAST(:base AS double precision) AS base,
             CAST(:max AS double precision) AS max_lock)
    INSERT INTO login_throttle AS t (key, failures, updated_at, locked_until)
    SELECT p.key, 1, p.now, CASE WHEN p.free <= 1 THEN p.now + make_interval(secs => p.base) END FROM p
    ON CONFLICT (key) DO UPDATE SET
      failures = CASE WHEN t.updated_at < (SELECT stale FROM p) THEN 1 ELSE t.failures + 1 END,
      updated_at = EXCLUDED.updated_at,
      locked_until = (
        SELECT CASE WHEN n.failures >= p.free
               THEN p.now + make_interval(secs => least(p.base * power(2, n.failures - p.free), p.max_lock)) END
        FROM p, (SELECT CASE WHEN t.updated_at < (SELECT stale FROM p) THEN 1 ELSE t.failures + 1 END AS failures) n)
    WHERE t.locked_until IS NULL OR t.locked_until <= EXCLUDED.updated_at
    RETURNING failures
    """
)


async def reserve_attempt(
    conn: AsyncConnection, key: str, now: datetime, window: timedelta, free: int, base: float, max_lock: float
) -> datetime | None:
    """Count an attempt at `key` before checking it: None if it may be checked, else the end
    of the lock-out that refuses it."""
    params = {"key": key, "now": now, "stale": now - window, "free": free, "base": base, "max": max_lock}
    if (await conn.execute(_RESERVE, params)).first() is not None:
        return None
    until = (await conn.execute(select(login_throttle.c.locked_until).where(login_throttle.c.key == key))).scalar()
    return until if until is not None else now


async def set_lock(conn: AsyncConnection, key: str, until: datetime) -> None:
    await conn.execute(update(login_throttle).where(login_throttle.c.key == key).values(locked_until=until))


async def clear_throttle(conn: AsyncConnection, key: str) -> None:
    await conn.execute(login_throttle.delete().where(login_throttle.c.key == key))


# --- token cut-offs ------------------------------------------------------------------------

# Taken before drawing a sequence number, so cut-offs commit in sequence order and a follower
# reading `sequence > cursor` never skips one that committed late (as the outbox does).
_CUTOFF_LOCK = 7245101


async def cut_off(conn: AsyncConnection, subject: str, now: datetime) -> None:
    """Refuse `subject`'s access tokens issued before `now` ('user:<id>' / 'session:<id>')."""
    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CUTOFF_LOCK})
    await conn.execute(
        text("INSERT INTO token_cutoffs (subject, not_before, created_at) VALUES (:s, :t, :t)"),
        {"s": subject, "t": now},
    )


async def cutoffs_after(conn: AsyncConnection, after: int, newer_than: datetime, limit: int = 1000) -> list[RowMapping]:
    rows = await conn.execute(
        text(
            "SELECT sequence, subject, not_before FROM token_cutoffs "
            "WHERE sequence > :after AND (:after > 0 OR created_at > :newer) ORDER BY sequence LIMIT :limit"
        ),
        {"after": after, "newer": newer_than, "limit": limit},
    )
    return list(rows.mappings())


async def prune_cutoffs(conn: AsyncConnection, older_than: datetime) -> None:
    await conn.execute(text("DELETE FROM token_cutoffs WHERE created_at < :t"), {"t": older_than})
