"""Server interceptors: conventional gRPC metrics, error mapping, request logging.

Small wrappers around the four handler shapes; each concern is its own class.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import sentry_sdk
import structlog
from grpc.aio import ServerInterceptor

from services.common import input_guard
from services.common.errors import ServiceError, internal_status, is_refused_value, refused_value, sqlstate
from services.common.metrics import GRPC_HANDLED, GRPC_HANDLING_SECONDS, GRPC_MSG_SENT, GRPC_STARTED

log = structlog.get_logger("grpc")

# grpc's handler objects are untyped namedtuples; Any keeps the wrappers honest about that.
Handler = Any


def _rpc_type(h: Handler) -> str:
    if h.request_streaming and h.response_streaming:
        return "bidi_stream"
    if h.request_streaming:
        return "client_stream"
    if h.response_streaming:
        return "server_stream"
    return "unary"


def _split(method: str) -> tuple[str, str]:
    _, service, name = method.split("/", 2)
    return service, name


class Malformed:
    """What a request that does not parse becomes, so the handler answers INVALID_ARGUMENT
    (grpc would otherwise answer INTERNAL from inside its own deserialisation)."""


MALFORMED = Malformed()


def _safe(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:
            return MALFORMED

    return parse


def _rewrap(h: Handler, unary: Callable[..., Any] | None, stream: Callable[..., Any] | None) -> Handler:
    kw = {"request_deserializer": _safe(h.request_deserializer), "response_serializer": h.response_serializer}
    if h.request_streaming and h.response_streaming:
        return grpc.stream_stream_rpc_method_handler(stream, **kw)
    if h.request_streaming:
        return grpc.stream_unary_rpc_method_handler(unary, **kw)
    if h.response_streaming:
        return grpc.unary_stream_rpc_method_handler(stream, **kw)
    return grpc.unary_unary_rpc_method_handler(unary, **kw)


async def drive_stream(
    inner: Callable[..., Any],
    request: Any,
    context: grpc.aio.ServicerContext,
    on_item: Callable[[], None] | None = None,
) -> None:
    """Run a server-streaming handler written either as an async generator or as a
    coroutine that calls `context.write` (grpc's health servicer does the latter)."""
    result = inner(request, context)
    if inspect.isasyncgen(result):
        async for item in result:
            if on_item is not None:
                on_item()
            await context.write(item)
    else:
        await result


def _behavior(h: Handler) -> Callable[..., Any]:
    return h.unary_unary or h.unary_stream or h.stream_unary or h.stream_stream  # type: ignore[return-value]


def is_transient(exc: BaseException) -> bool:
    """Database gone or restarting, a pool timeout, an upstream service down: retryable."""
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if isinstance(exc, PoolTimeout | ConnectionError | OSError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, grpc.aio.AioRpcError) and exc.code() in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    ):
        return True
    text = str(exc).lower()
    return any(
        marker in text
        for marker in ("connection was closed", "connection is closed", "cannot connect", "the database system is")
    )


class WrappingInterceptor(ServerInterceptor):
    """An interceptor that wraps each method's handler once.

    grpc.aio asks the interceptors for a handler on every call, but what a wrapper does
    depends only on the method (per-call state comes through `context`), so building its
    closures and handler tuple per call was waste on every request. The cache is checked
    against the inner handler it wrapped: an inner interceptor that builds a new handler
    per call is simply wrapped per call.
    """

    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}

    def wrap(self, handler: Handler, method: str) -> Handler:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(details)
        if handler is None:
            return handler
        method = details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self.wrap(handler, method)
        self._wrapped[method] = (handler, wrapped)
        return wrapped


class ErrorInterceptor(WrappingInterceptor):
    """ServiceError -> rich status; anything unexpected -> INTERNAL without detail, reported."""

    def wrap(self, handler: Handler, method: str) -> Handler:
        inner = _behavior(handler)

        async def _fail(exc: BaseException, context: grpc.aio.ServicerContext) -> None:
            if isinstance(exc, ServiceError):
                await context.abort_with_status(exc.to_status())
            if is_refused_value(exc):  # the guard should have caught it: say so, but it is a 400
                log.warning("value refused by the database", method=method, sqlstate=sqlstate(exc))
                await context.abort_with_status(refused_value(exc).to_status())
            if is_transient(exc):
                log.warning("transient failure", method=method, error=type(exc).__name__)
                await context.abort_with_status(
                    ServiceError(
                        grpc.StatusCode.UNAVAILABLE, "temporarily unavailable; retry", reason="RETRY"
                    ).to_status()
                )
            log.error("unhandled error", method=method, exc_info=exc)
            sentry_sdk.capture_exception(exc)
            await context.abort_with_status(internal_status())

        if handler.response_streaming:

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> None:
                try:
                    if request is MALFORMED:
                        raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT, "malformed request", reason="MALFORMED")
                    await drive_stream(inner, request, context)
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    await _fail(exc, context)

            return _rewrap(handler, None, stream)

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                if request is MALFORMED:
                    raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT, "malformed request", reason="MALFORMED")
                return await inner(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _fail(exc, context)

        return _rewrap(handler, unary, None)


class GuardInterceptor(WrappingInterceptor):
    """Every request's strings checked against its proto's rules before the handler runs
    (input_guard); inside ErrorInterceptor, so a refusal is a rich INVALID_ARGUMENT."""

    def wrap(self, handler: Handler, method: str) -> Handler:
        if handler.request_streaming:  # streamed bodies (uploads) are parsed by their handlers
            return handler
        inner = _behavior(handler)

        if handler.response_streaming:

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> None:
                if request is not MALFORMED:
                    input_guard.check(request)
                await drive_stream(inner, request, context)

            return _rewrap(handler, None, stream)

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if request is not MALFORMED:
                input_guard.check(request)
            return await inner(request, context)

        return _rewrap(handler, unary, None)


class MetricsInterceptor(WrappingInterceptor):
    """grpc_server_started_total / handled_total / handling_seconds, by service, method, type."""

    def wrap(self, handler: Handler, method: str) -> Handler:
        service, name = _split(method)
        labels = (service, name, _rpc_type(handler))
        inner = _behavior(handler)
        # The labelled children once per method, not a label lookup per call.
        started = GRPC_STARTED.labels(*labels)
        seconds = GRPC_HANDLING_SECONDS.labels(*labels)

        def _done(context: grpc.aio.ServicerContext, start: float, code: grpc.StatusCode | None) -> None:
            code_name = (code or context.code() or grpc.StatusCode.OK).name  # type: ignore[union-attr]
            GRPC_HANDLED.labels(*labels, code_name).inc()
            seconds.observe(time.perf_counter() - start)

        if handler.response_streaming:

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> None:
                started.inc()
                start = time.perf_counter()
                code: grpc.StatusCode | None = None
                sent = GRPC_MSG_SENT.labels(*labels)
                try:
                    await drive_stream(inner, request, context, sent.inc)
                except grpc.aio.AbortError:
                    raise
                except BaseException:
                    code = grpc.StatusCode.CANCELLED if context.cancelled() else grpc.StatusCode.UNKNOWN
                    raise
                finally:
                    _done(context, start, code)

            return _rewrap(handler, None, stream)

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started.inc()
            start = time.perf_counter()
            code: grpc.StatusCode | None = None
            try:
                return await inner(request, context)
            except grpc.aio.AbortError:
                raise
            except BaseException:
                code = grpc.StatusCode.UNKNOWN
                raise
            finally:
                _done(context, start, code)

        return _rewrap(handler, unary, None)
