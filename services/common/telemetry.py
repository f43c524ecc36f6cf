"""OpenTelemetry tracing and Sentry, each switched on by its environment variable."""

from __future__ import annotations

from typing import Any

import sentry_sdk
import structlog
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from services.common.config import ServiceSettings
from services.common.scrub import scrub

log = structlog.get_logger("telemetry")


def setup_tracing(settings: ServiceSettings) -> Any | None:
    """Trace when OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise not at all.

    Returns the gRPC server interceptor that opens a span per RPC, or None. Without an
    exporter a span has nowhere to go, and the interceptor cost a fifth of an order's CPU
    (bench/RESULTS.md), so it is not installed.
    """
    if not settings.otel_exporter_otlp_endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient, aio_server_interceptor, filters

    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otel_exporter_otlp_endpoint)))
    trace.set_tracer_provider(provider)
    log.info("tracing enabled", endpoint=settings.otel_exporter_otlp_endpoint)
    # Outgoing calls (challenges → market, risk → challenges) carry the trace context.
    GrpcAioInstrumentorClient().instrument(tracer_provider=provider)

    # Health and reflection are not traced (noise, and health's Watch is not a generator).
    skip = filters.any_of(filters.health_check(), filters.service_prefix("grpc.reflection"))
    return aio_server_interceptor(tracer_provider=provider, filter_=filters.negate(skip))


def scrub_event(event: Any, hint: Any) -> Any:
    """Every report leaves scrubbed (services/common/scrub.py): messages quote driver errors."""
    return scrub(event)


def setup_sentry(settings: ServiceSettings, transport: Any = None) -> bool:
    """Report errors when SENTRY_DSN is set (`transport`: where events go instead, in tests)."""
    dsn = settings.sentry_dsn.get_secret_value()
    if not dsn:
        return False
    sentry_sdk.init(
        dsn=dsn,
        environment=settings.environment,
        send_default_pii=False,
        # A frame's locals hold the request (a password) and the values bound to a statement.
        include_local_variables=False,
        before_send=scrub_event,
        traces_sample_rate=0.0,
        # Errors are reported once, by the error interceptor; logging integration would
        # report the same exception a second time.
        default_integrations=False,
        integrations=[],
        transport=transport,
    )
    log.info("sentry enabled")
    return True
