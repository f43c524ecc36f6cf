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
    # Local token buckets for /api/auth/* (per Envoy instance): one for all clients, and one
    # per client address (so one client's burst cannot lock everyone else out).
    auth_rate_limit_tokens: int = 200
    auth_rate_limit_per_second: int = 100
    auth_rate_limit_per_client_tokens: int = 60
    auth_rate_limit_per_client_per_second: int = 30
    # OpenTelemetry: Envoy starts (or continues) the trace and exports its span by OTLP/gRPC.
    otlp_collector: tuple[str, int] | None = None
    service_name: str = "gateway"
    # The address Envoy's connections to the services come from (None: the kernel's
    # choice). Locally 127.0.0.2, so the services can tell the gateway, whose client-address
    # header they believe, from any other caller on 127.0.0.1 (services/common/client_address.py).
    upstream_source: str | None = None
    # Proxies in front of Envoy whose X-Forwarded-For it believes (a cloud load balancer or
    # ingress: 1). 0: the client address is the connection's peer.
    xff_num_trusted_hops: int = 0
    # The browser console's files (web/), served at / on the API's origin (None: no console);
    # `console_served_from` is where Envoy reads them, when not there (the gateway image).
    console_root: str | None = str(console.WEB)
    console_served_from: str | None = None
    # A listener of its own for the admin's /stats/prometheus and /ready only (None: none).
    # In Kubernetes the admin API binds loopback — it can drain, quit and dump config — and
    # Prometheus and the kubelet use this port instead.
    stats_port: int | None = None
