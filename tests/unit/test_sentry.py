"""Sentry: an unhandled error is reported once; a deliberate error for bad input is not."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
import sentry_sdk
from sentry_sdk.transport import Transport

from services.common.errors import invalid_argument
from services.common.interceptors import ErrorInterceptor


class LocalTransport(Transport):
    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.envelopes: list[Any] = []

    def capture_envelope(self, envelope: Any) -> None:
        self.envelopes.append(envelope)


class FakeContext:
    def __init__(self) -> None:
        self.status: grpc.Status | None = None

    async def abort_with_status(self, status: grpc.Status) -> None:
        self.status = status
        raise grpc.aio.AbortError()

    def invocation_metadata(self) -> tuple:
        return ()


class Details:
    method = "/tradesense.market.v1.MarketService/GetSymbol"
    invocation_metadata = ()


async def _call(behavior: Any) -> FakeContext:
    handler = grpc.unary_unary_rpc_method_handler(behavior)

    async def continuation(_: Any) -> Any:
        return handler

    wrapped = await ErrorInterceptor().intercept_service(continuation, Details())
    ctx = FakeContext()
    with pytest.raises(grpc.aio.AbortError):
        await wrapped.unary_unary(object(), ctx)
    return ctx


@pytest.fixture
def transport() -> LocalTransport:
    t = LocalTransport()
    sentry_sdk.init(dsn="https://public@sentry.example/1", transport=t, default_integrations=False)
    yield t
    sentry_sdk.get_client().close()
    sentry_sdk.init(dsn=None)


async def test_unhandled_error_is_reported_once_and_hidden_from_the_caller(transport: LocalTransport) -> None:
    async def boom(request: Any, context: Any) -> Any:
        raise RuntimeError("database password is hunter2")

    ctx = await _call(boom)
    sentry_sdk.flush()
    assert ctx.status is not None and ctx.status.code == grpc.StatusCode.INTERNAL
    assert "hunter2" not in ctx.status.details  # the caller learns nothing
    events = [e for env in transport.envelopes for e in [env.get_event()] if e]
    assert len(events) == 1
    assert events[0]["exception"]["values"][0]["type"] == "RuntimeError"


async def test_bad_input_is_not_reported(transport: LocalTransport) -> None:
    async def bad(request: Any, context: Any) -> Any:
        raise invalid_argument({"symbol": "is required"})

    ctx = await _call(bad)
    sentry_sdk.flush()
    assert ctx.status is not None and ctx.status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert transport.envelopes == []
