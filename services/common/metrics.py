"""Prometheus metrics: the conventional gRPC server series and the exporter."""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

_LABELS = ("grpc_service", "grpc_method", "grpc_type")

GRPC_STARTED = Counter("grpc_server_started_total", "RPCs started on the server.", _LABELS)
GRPC_HANDLED = Counter(
    "grpc_server_handled_total", "RPCs completed on the server, by status code.", (*_LABELS, "grpc_code")
)
GRPC_HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time from the start of an RPC to its completion.",
    _LABELS,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
GRPC_MSG_SENT = Counter("grpc_server_msg_sent_total", "Stream messages sent by the server.", _LABELS)


def serve_metrics(host: str, port: int) -> None:
    """Expose /metrics on its own port (a daemon thread; it dies with the process)."""
    start_http_server(port, addr=host)
