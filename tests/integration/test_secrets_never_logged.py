"""A database error during register reaches neither the logs nor Sentry with the password or
its argon2 hash (issue 16, item 6). Before, SQLAlchemy's error text carried the statement's
parameters — the hash among them — into auth.log and would have into Sentry; a frame's locals
(the request, the password) would have gone to Sentry too."""

from __future__ import annotations

import contextlib
import io
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import sentry_sdk
import structlog
from pydantic import SecretStr
from tradesense.auth.v1 import auth_pb2

from services.auth.domain.passwords import Hasher
from services.auth.domain.throttle import ThrottlePolicy
from services.auth.domain.tokens import TokenSettings
from services.auth.keyring import KeyRing
from services.auth.server import SPEC
from services.auth.servicer import AuthServicer
from services.common import logging as logging_mod
from services.common.config import ServiceSettings
from services.common.db import create_engine
from services.common.interceptors import ErrorInterceptor
from services.common.migrations import migrate
from services.common.telemetry import setup_sentry
from tests.conftest import Database
from tests.unit.test_sentry import Details, FakeContext, LocalTransport

pytestmark = pytest.mark.integration

PASSWORD = "correct-horse-battery-42"


async def test_a_database_error_on_register_logs_and_reports_no_password_or_hash(
    database: Database, tmp_path: Path
) -> None:
    settings = ServiceSettings(service_name="auth", database_url=SecretStr(database.create_database()))
    engine = create_engine(settings)
    await migrate(engine, "auth", SPEC.migrations)
    async with engine.begin() as conn:  # every insert into users fails, as a database error would
        await conn.exec_driver_sql(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'forced failure'; END $$"
        )
        await conn.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION refuse()"
        )
    servicer = AuthServicer(
        engine=engine,
        keyring=KeyRing(tmp_path / "keys"),
        token_settings=TokenSettings("i", "a", timedelta(minutes=15), timedelta(days=1)),
        hasher=Hasher(time_cost=1, memory_cost=8192),
        throttle=ThrottlePolicy(),
        service_clients={},
    )
    transport = LocalTransport()
    sink, handlers = io.StringIO(), logging.getLogger().handlers[:]
    with contextlib.redirect_stdout(sink):  # the service's log configuration, writing here
        logging_mod.configure("auth")
    setup_sentry(settings.model_copy(update={"sentry_dsn": SecretStr("https://k@sentry.example/1")}), transport)
    try:

        async def continuation(_: Any) -> Any:
            return grpc.unary_unary_rpc_method_handler(servicer.Register)

        wrapped = await ErrorInterceptor().intercept_service(continuation, Details())
        ctx = FakeContext()
        with pytest.raises(grpc.aio.AbortError):
            request = auth_pb2.RegisterRequest(email="leak@example.com", password=PASSWORD, display_name="L")
            await wrapped.unary_unary(request, ctx)
        sentry_sdk.flush()
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init(dsn=None)
        structlog.reset_defaults()
        logging.getLogger().handlers[:] = handlers
        await engine.dispose()
    assert ctx.status is not None and ctx.status.code == grpc.StatusCode.INTERNAL
    logs = sink.getvalue()
    assert "forced failure" in logs  # the error was logged, with its traceback
    reports = [str(envelope.serialize()) for envelope in transport.envelopes]
    assert len(reports) == 1 and "forced failure" in reports[0]
    for text in (logs, *reports):
        assert PASSWORD not in text
        assert "$argon2" not in text
