"""Render the Envoy configuration from the API catalogue.

The protos are the one source of truth: every service package becomes a cluster,
every `google.api.http` binding is transcoded, every INTERNAL method is blocked at
the edge, and the access option decides which routes need a token. Adding an RPC
means editing its .proto and running `make protos`, nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway import console, filters, routes
from gateway.settings import DEFAULT_PORTS, GatewaySettings

__all__ = ["DEFAULT_PORTS", "GatewaySettings", "render", "write", "write_default", "write_kubernetes"]

HERE = Path(__file__).resolve().parent
GENERATED = HERE / "generated"

_HEALTH_LUA = (HERE / "health.lua").read_text()
UPSTREAM_STREAM_WINDOW = 1 << 20
UPSTREAM_CONNECTION_WINDOW = 16 << 20


def _cluster(name: str, hosts: Any, s: GatewaySettings) -> dict[str, Any]:
    endpoints = hosts if isinstance(hosts, list) else [hosts]
    is_ip = all(h.replace(".", "").isdigit() for h, _ in endpoints)
    return {
        "name": name,
        "type": "STATIC" if is_ip else "STRICT_DNS",
        "connect_timeout": "1s",
        "lb_policy": "ROUND_ROBIN",
        "dns_lookup_family": "V4_ONLY",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                # Envoy's default window (256 MiB a stream) let a client that stops reading make
                # Envoy buffer a whole export: 1 MiB a stream pushes back on the service instead.
                "explicit_http_config": {
                    "http2_protocol_options": {
                        "initial_stream_window_size": UPSTREAM_STREAM_WINDOW,
                        "initial_connection_window_size": UPSTREAM_CONNECTION_WINDOW,
                    }
                },
            }
        },
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}}
                        for host, port in endpoints
                    ]
                }
            ],
        },
        "health_checks": [
            {
                "timeout": "1s",
                "interval": f"{s.health_check_interval_s}s",
                "unhealthy_threshold": 2,
                "healthy_threshold": 1,
                "grpc_health_check": {},
            }
        ],
        # Keep a few gRPC connections warm; streams multiplex over them.
        "circuit_breakers": {"thresholds": [{"max_requests": 10000, "max_pending_requests": 10000}]},
        **(
            {"upstream_bind_config": {"source_address": {"address": s.upstream_source, "port_value": 0}}}
            if s.upstream_source
            else {}
        ),
    }


def _client_address(s: GatewaySettings) -> dict[str, Any]:
    """Where the client address comes from: the peer, or XFF past the listed balancers only."""
    if not s.xff_trusted_cidrs:
        return {"use_remote_address": True, "xff_num_trusted_hops": 0}
    cidrs = []
    for c in s.xff_trusted_cidrs:
        prefix, _, length = c.partition("/")
        cidrs.append({"address_prefix": prefix, "prefix_len": int(length or (128 if ":" in prefix else 32))})
    return {
        "use_remote_address": False,  # Envoy refuses both at once
        "original_ip_detection_extensions": [
            {
                "name": "envoy.http.original_ip_detection.xff",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.http.original_ip_detection.xff.v3.XffConfig",
                    "xff_trusted_cidrs": {"cidrs": cidrs},
                },
            }
        ],
    }


def _overload_manager(s: GatewaySettings) -> dict[str, Any]:
    """A cap on downstream connections for the whole process: past it Envoy refuses new ones
    instead of running out of memory or file descriptors."""
    return {
        "resource_monitors": [
            {
                "name": "envoy.resource_monitors.global_downstream_max_connections",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",  # noqa: E501
                    "max_active_downstream_connections": s.max_downstream_connections,
                },
            }
        ]
    }


def _jwks_cluster(s: GatewaySettings) -> dict[str, Any]:
    return {
        "name": "jwks",
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": "jwks",
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {"socket_address": {"address": s.jwks_host, "port_value": s.listen_port}}
                            }
                        }
                    ]
                }
            ],
        },
    }


def _stats_listener(s: GatewaySettings) -> tuple[dict[str, Any], dict[str, Any]]:
    """A listener that forwards exactly GET /stats/prometheus and /ready to the admin API."""
    routes = [
        {
            "match": {"path": path, "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]},
            "route": {"cluster": "envoy_admin"},
        }
        for path in ("/stats/prometheus", "/ready")
    ]
    routes.append({"match": {"prefix": "/"}, "direct_response": {"status": 404}})
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",  # noqa: E501
        "stat_prefix": "stats",
        "route_config": {"name": "stats", "virtual_hosts": [{"name": "stats", "domains": ["*"], "routes": routes}]},
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
            }
        ],
    }
    listener = {
        "name": "stats",
        "address": {"socket_address": {"address": "0.0.0.0", "port_value": s.stats_port}},
        "filter_chains": [
            {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
        ],
    }
    cluster = {
        "name": "envoy_admin",
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": "envoy_admin",
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {"socket_address": {"address": "127.0.0.1", "port_value": s.admin_port}}
                            }
                        }
                    ]
                }
            ],
        },
    }
    return listener, cluster


def render(s: GatewaySettings) -> dict[str, Any]:
    health_targets = sorted(s.upstreams)
    lua = _HEALTH_LUA.replace("__SERVICES__", ", ".join(f'"{n}"' for n in health_targets))
    http_filters: list[dict[str, Any]] = [
        {
            # First, so last on the way out (gateway/responses.lua): Envoy's own refusals get a
            # stable reason, every response the allow-list's grant, REST no gRPC headers.
            "name": "envoy.filters.http.lua.responses",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                "default_source_code": {"inline_string": filters.responses_lua(s)},
            },
        },
        {
            # Bodies above the limit are refused here with 413, before any service sees them
            # (the CSV upload route streams and opts out below).
            "name": "envoy.filters.http.buffer",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
                "max_request_bytes": s.max_request_bytes,
            },
        },
        {
            "name": "envoy.filters.http.cors",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"},
        },
        {
            "name": "envoy.filters.http.lua",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                "default_source_code": {"inline_string": filters.request_checks_lua(s)},
                "source_codes": {"health": {"inline_string": lua}},
            },
        },
        filters.transcoder(s),
        filters.sse_token_lua(),
        filters.local_ratelimit(),
        filters.jwt_authn(s),
        {
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        },
    ]
    hcm: dict[str, Any] = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",  # noqa: E501
        "stat_prefix": "ingress",
        "codec_type": "AUTO",
        **_client_address(s),
        "request_headers_timeout": f"{s.request_headers_timeout_s}s",
        # Envoy's edge recommendations: few streams a connection, small windows (what one
        # client can make Envoy buffer).
        "http2_protocol_options": {
            "max_concurrent_streams": s.max_concurrent_streams,
            "initial_stream_window_size": 65536,
            "initial_connection_window_size": 1048576,
        },
        "normalize_path": True,
        "merge_slashes": True,
        "path_with_escaped_slashes_action": "UNESCAPE_AND_REDIRECT",
        "stream_idle_timeout": "300s",
        "request_timeout": "0s",
        # Underscored names could smuggle identity headers past proxies that fold "_" to "-".
        # Dropped rather than refused: the codec's refusal is a bare text/plain 400 outside
        # the local reply mapper, and the request is fine without them.
        "common_http_protocol_options": {"headers_with_underscores_action": "DROP_HEADER"},
        "generate_request_id": True,
        "local_reply_config": filters.local_reply_config(),
        "access_log": [
            {
                "name": "envoy.access_loggers.stdout",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                    # No query string: SSE may carry access_token there, which must never be logged.
                    "log_format": {
                        "json_format": {
                            "time": "%START_TIME%",
                            "method": "%REQ(:METHOD)%",
                            "path": "%PATH(NQ:ORIG_OR_PATH)%",
                            "status": "%RESPONSE_CODE%",
                            "grpc_status": "%GRPC_STATUS%",
                            "duration_ms": "%DURATION%",
                            "upstream": "%UPSTREAM_CLUSTER%",
                            "request_id": "%REQ(X-REQUEST-ID)%",
                            "trace_id": "%REQ(TRACEPARENT)%",
                        }
                    },
                },
            }
        ],
        "route_config": {
            "name": "tradesense",
            "max_direct_response_body_size_bytes": console.MAX_BODY,
            "virtual_hosts": [
                {
                    "name": "api",
                    "domains": ["*"],
                    "typed_per_filter_config": filters.cors(s),
                    "request_headers_to_remove": filters.IDENTITY_HEADERS,
                    # The client address as Envoy determined it (the peer, or XFF past the trusted
                    # balancers), the one header services believe from the gateway; a client's own
                    # copy is overwritten.
                    "request_headers_to_add": [
                        {
                            "header": {
                                "key": "x-envoy-external-address",
                                "value": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
                            },
                            "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                        }
                    ],
                    "routes": routes.routes(s),
                }
            ],
        },
        "http_filters": http_filters,
    }
    clusters = [*(_cluster(n, hosts, s) for n, hosts in sorted(s.upstreams.items())), _jwks_cluster(s)]
    if s.otlp_collector is not None:
        host, port = s.otlp_collector
        hcm["tracing"] = {
            "provider": {
                "name": "envoy.tracers.opentelemetry",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                    "grpc_service": {"envoy_grpc": {"cluster_name": "otel_collector"}, "timeout": "1s"},
                    "service_name": s.service_name,
                },
            },
            "random_sampling": {"value": 100},
        }
        collector = _cluster("otel_collector", (host, port), s)
        collector.pop("health_checks")
        clusters.append(collector)
    listeners: list[dict[str, Any]] = []
    if s.stats_port is not None:
        stats_listener, admin_cluster = _stats_listener(s)
        listeners.append(stats_listener)
        clusters.append(admin_cluster)
    return {
        "admin": {
            "address": {"socket_address": {"address": s.admin_host, "port_value": s.admin_port}},
        },
        "overload_manager": _overload_manager(s),
        "static_resources": {
            "listeners": [
                *listeners,
                {
                    "name": "http",
                    "address": {"socket_address": {"address": s.listen_host, "port_value": s.listen_port}},
                    "per_connection_buffer_limit_bytes": s.max_request_bytes,
                    "filter_chains": [
                        {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
                    ],
                },
            ],
            "clusters": clusters,
        },
    }


def write(s: GatewaySettings, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(render(s), indent=2) + "\n")
    return path


def write_kubernetes(namespace: str = "tradesense") -> Path:
    """The config baked into the gateway image: headless Services by DNS (Envoy resolves
    every pod and balances per request), admin on loopback with its metrics and readiness on a
    listener of their own (9902, reachable only through the NetworkPolicy), the client address
    from X-Forwarded-For past the load balancers' range only (never what a client writes there), HSTS
    (TLS terminates at the balancer), traces
    to the in-cluster collector."""
    s = GatewaySettings(
        upstreams={svc: (f"{svc}.{namespace}.svc.cluster.local", port) for svc, port in DEFAULT_PORTS.items()},
        admin_host="127.0.0.1",
        stats_port=9902,
        # The cloud load balancer's range: set it to yours (docs/production.md). Only its
        # X-Forwarded-For entries are believed; what a client writes there is not.
        xff_trusted_cidrs=("10.0.0.0/8",),
        hsts_max_age_seconds=31_536_000,
        descriptor_path="/etc/envoy/tradesense.pb",
        cors_origins=("https://app.tradesense.example",),
        console_served_from="/etc/envoy/web",
        otlp_collector=("otel-collector.observability.svc.cluster.local", 4317),
    )
    return write(s, GENERATED / "envoy-k8s.json")


def write_default() -> Path:
    """The config for the default ports (DESIGN.md), checked by `envoy --mode validate` in tests."""
    return write(GatewaySettings(), GENERATED / "envoy.json")
