"""The gateway's settings: what `render` turns into Envoy's configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway import console

GENERATED = Path(__file__).resolve().parent / "generated"
DEFAULT_PORTS = {"auth": 50051, "challenges": 50052, "market": 50053, "risk": 50054}


@dataclass
class GatewaySettings:
    listen_host: str = "0.0.0.0"
    listen_port: int = 8080
    admin_host: str = "127.0.0.1"
    admin_port: int = 9901
    # service -> (host, port) or a list of them; hosts may be DNS names (headless Services)
    upstreams: dict[str, Any] = field(default_factory=lambda: {k: ("127.0.0.1", v) for k, v in DEFAULT_PORTS.items()})
    descriptor_path: str = str(GENERATED / "tradesense.pb")
    # Origins whose browsers may read responses (CORS), exactly as the browser sends them
    # ("https://app.example.com"); none by default: the console is served on the API's own
    # origin. Credentials (the SSE cookie) are granted to these origins only.
    cors_origins: tuple[str, ...] = ()
    max_request_bytes: int = 1 << 20
    health_check_interval_s: float = 2.0
    jwt_issuer: str = "tradesense-auth"
    jwt_audience: str = "tradesense"
    # Where Envoy fetches the JWKS: through its own listener (transcoded to auth's GetJwks).
    jwks_host: str = "127.0.0.1"
    jwks_cache_seconds: int = 60
    # Local token buckets for /api/auth/* (per Envoy instance), one per client address only: a
    # bucket shared by all clients let a few of them starve everyone's login and refresh.
    # Envoy's own JWKS fetch has a route outside them.
    auth_rate_limit_per_client_tokens: int = 60
    auth_rate_limit_per_client_per_second: int = 30
    # OpenTelemetry: Envoy starts (or continues) the trace and exports its span by OTLP/gRPC.
    otlp_collector: tuple[str, int] | None = None
    service_name: str = "gateway"
    # The address Envoy's connections to the services come from (None: the kernel's
    # choice). Locally 127.0.0.2, so the services can tell the gateway, whose client-address
    # header they believe, from any other caller on 127.0.0.1 (services/common/client_address.py).
    upstream_source: str | None = None
    # The load balancers in front of Envoy (CIDRs) whose X-Forwarded-For it believes: the
    # client address is the rightmost XFF entry not in these ranges. Empty: the connection's
    # peer, and any XFF a client sends is ignored. A hop count is not enough: behind an L4
    # balancer that adds nothing, "one trusted hop" lets a client pick its own address.
    xff_trusted_cidrs: tuple[str, ...] = ()
    # Downstream limits: connections at once (overload manager), HTTP/2 streams per
    # connection, and how long a request's headers may take to arrive (slowloris).
    max_downstream_connections: int = 10_000
    max_concurrent_streams: int = 100
    request_headers_timeout_s: float = 10.0
    # The browser console's files (web/), served at / on the API's origin (None: no console);
    # `console_served_from` is where Envoy reads them, when not there (the gateway image).
    console_root: str | None = str(console.WEB)
    console_served_from: str | None = None
    # A listener of its own for the admin's /stats/prometheus and /ready only (None: none).
    # In Kubernetes the admin API binds loopback — it can drain, quit and dump config — and
    # Prometheus and the kubelet use this port instead.
    stats_port: int | None = None
    # Strict-Transport-Security on every response, for a gateway whose clients reach it only
    # through TLS (Kubernetes: the load balancer terminates it). 0: none (plain-HTTP local runs).
    hsts_max_age_seconds: int = 0
