"""Render the Envoy configuration from the API catalogue.

The protos are the one source of truth: every service package becomes a cluster,
every `google.api.http` binding is transcoded, every INTERNAL method is blocked at
the edge, and the access option decides which routes need a token. Adding an RPC
means editing its .proto and running `make protos`, nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway import console
from services.common import catalog

HERE = Path(__file__).resolve().parent
GENERATED = HERE / "generated"

DEFAULT_PORTS = {"auth": 50051, "challenges": 50052, "market": 50053, "risk": 50054}

_HEALTH_LUA = (HERE / "health.lua").read_text()


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
                "explicit_http_config": {"http2_protocol_options": {}},
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


def _not_found() -> dict[str, Any]:
    # Plain text: the local reply mapper (_local_reply_config) renders it as a google.rpc.Status.
    return {"status": 404, "body": {"inline_string": "no such route"}}


# Envoy's own refusals (bad JSON, missing token, body too large, no healthy upstream, rate
# limit, our 404s) are text/plain by default; browsers and the OpenAPI description expect
# the same google.rpc.Status JSON the transcoder renders for a service's error.
_LOCAL_REPLY_CODES = {
    400: 3,
    401: 16,
    403: 7,
    404: 5,
    405: 12,
    408: 4,
    413: 3,
    429: 8,
    431: 3,
    502: 14,
    503: 14,
    504: 4,
}


def _local_reply_config() -> dict[str, Any]:
    def applies(status: int) -> dict[str, Any]:
        return {
            "and_filter": {
                "filters": [
                    {
                        "status_code_filter": {
                            "comparison": {
                                "op": "EQ",
                                "value": {"default_value": status, "runtime_key": f"local_reply.mapper_{status}"},
                            }
                        }
                    },
                    # /health answers its own JSON (from Lua). A gRPC client's local reply still gets
                    # grpc-status trailers (Envoy sets those after this rewrite), the JSON as grpc-message.
                    {
                        "header_filter": {
                            "header": {"name": ":path", "string_match": {"exact": "/health"}, "invert_match": True}
                        }
                    },
                ]
            }
        }

    return {
        "mappers": [
            {
                "filter": applies(status),
                "body_format_override": {
                    "json_format": {"code": code, "message": "%LOCAL_REPLY_BODY%", "details": []},
                    "content_type": "application/json",
                },
            }
            for status, code in sorted(_LOCAL_REPLY_CODES.items())
        ]
    }


def _routes(s: GatewaySettings) -> list[dict[str, Any]]:
    methods = catalog.methods()
    routes: list[dict[str, Any]] = [
        {
            "match": {"path": "/health"},
            "direct_response": {"status": 200},  # answered by the Lua filter before this
            "typed_per_filter_config": {
                "envoy.filters.http.lua": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute",
                    "name": "health",
                }
            },
        }
    ]
    # INTERNAL methods are for service-to-service calls only: never reachable from outside.
    for m in methods:
        if m.access in ("INTERNAL", "SERVICE_LOGIN"):
            routes.append(
                {
                    "match": {"path": m.grpc_path},
                    "direct_response": _not_found(),
                }
            )
    # Browser streams (SSE): EventSource cannot set Authorization, so the token may come
    # from the access_token query parameter or cookie; sse_token.lua moves it into the
    # header before jwt_authn. Only these routes run that script. Event streams are never
    # cached nor buffered by a proxy on the way.
    for m in methods:
        if m.server_streaming and m.http_path and m.service in s.upstreams:
            route: dict[str, Any] = {"match": {"path": m.grpc_path}, "route": {"cluster": m.service, "timeout": "0s"}}
            if m.sse_event:
                route["response_headers_to_add"] = [
                    {"header": {"key": k, "value": v}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
                    for k, v in (("cache-control", "no-cache"), ("x-accel-buffering", "no"))
                ]
            if m.access != "PUBLIC":
                route["typed_per_filter_config"] = {
                    "envoy.filters.http.lua.sse_token": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute",
                        "name": "sse_token",
                    }
                }
            routes.append(route)
    for svc, full_names in catalog.services().items():
        if svc not in s.upstreams:
            continue
        for full in full_names:
            route = {
                "match": {"prefix": f"/{full}/"},
                # Streams (SSE) stay open; unary deadlines come from the client (grpc-timeout).
                "route": {"cluster": svc, "timeout": "0s"},
            }
            if svc == "auth":
                # The per-client bucket is keyed by the client's address as Envoy derives it
                # (the connection's peer, or X-Forwarded-For past xff_num_trusted_hops).
                route["route"]["rate_limits"] = [{"actions": [{"remote_address": {}}]}]
                route["typed_per_filter_config"] = {
                    "envoy.filters.http.local_ratelimit": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
                        "stat_prefix": "auth_rate_limit",
                        "token_bucket": {
                            "max_tokens": s.auth_rate_limit_tokens,
                            "tokens_per_fill": s.auth_rate_limit_per_second,
                            "fill_interval": "1s",
                        },
                        "descriptors": [
                            {
                                "entries": [{"key": "remote_address"}],  # no value: a bucket per address
                                "token_bucket": {
                                    "max_tokens": s.auth_rate_limit_per_client_tokens,
                                    "tokens_per_fill": s.auth_rate_limit_per_client_per_second,
                                    "fill_interval": "1s",
                                },
                            }
                        ],
                        "max_dynamic_descriptors": 100_000,
                        "filter_enabled": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
                        "filter_enforced": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
                        "response_headers_to_add": [
                            {
                                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                                "header": {"key": "retry-after", "value": "1"},
                            }
                        ],
                    }
                }
            routes.append(route)
    # Streamed uploads (google.api.HttpBody with a client stream) are not buffered.
    for m in methods:
        if m.client_streaming and m.http_path and m.service in s.upstreams:
            routes.append(
                {
                    "match": {"prefix": m.http_path},
                    "route": {"cluster": m.service, "timeout": "0s"},
                    "typed_per_filter_config": {
                        "envoy.filters.http.buffer": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute",
                            "disabled": True,
                        }
                    },
                }
            )
    # CORS preflights are answered by the cors filter, which skips direct-response
    # routes; give them a real route (never reached for an allowed origin).
    if s.upstreams:
        routes.append(
            {
                "match": {
                    "prefix": "/api/",
                    "headers": [{"name": ":method", "string_match": {"exact": "OPTIONS"}}],
                },
                "route": {"cluster": sorted(s.upstreams)[0]},
            }
        )
    if s.console_root:
        served = Path(s.console_served_from) if s.console_served_from else None
        routes += console.routes(Path(s.console_root), served)
    routes.append({"match": {"prefix": "/"}, "direct_response": _not_found()})
    return routes


def _transcoder(s: GatewaySettings) -> dict[str, Any]:
    full_services = [f for fs in catalog.services().values() for f in fs]
    return {
        "name": "envoy.filters.http.grpc_json_transcoder",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
            "proto_descriptor": s.descriptor_path,
            "services": sorted(full_services),
            "print_options": {
                "add_whitespace": False,
                "always_print_primitive_fields": True,
                "always_print_enums_as_ints": False,
                "preserve_proto_field_names": True,
                "stream_sse_style_delimited": True,
            },
            "convert_grpc_status": True,
            "auto_mapping": False,
            "case_insensitive_enum_parsing": True,
            "query_param_unescape_plus": True,
            "ignored_query_parameters": ["access_token"],
            # A query parameter no method has is ignored (a cache-buster, a tracking tag), as
            # browsers and CDNs expect; unknown fields in a JSON body are still refused.
            "ignore_unknown_query_parameters": True,
            "request_validation_options": {
                "reject_unknown_method": False,
                "reject_unknown_query_parameters": False,
                "reject_binding_body_field_collisions": True,
            },
            "max_request_body_size": s.max_request_bytes,
            "max_response_body_size": 16 * s.max_request_bytes,
        },
    }


# Identity headers a client might send hoping a service trusts them. Services only
# trust the verified token, but nothing upstream should ever see these.
IDENTITY_HEADERS = ["x-user-id", "x-user-role", "x-user-email", "x-jwt-payload", "x-forwarded-user", "x-auth-user"]


def _jwt_authn(s: GatewaySettings) -> dict[str, Any]:
    """Verification at the edge, rules derived from each method's access option.

    Runs after the transcoder, so rules match gRPC paths and cover REST and raw gRPC alike.
    """
    provider = "tradesense"
    rules: list[dict[str, Any]] = []
    for m in catalog.methods():
        if m.access in ("INTERNAL", "SERVICE_LOGIN"):
            rules.append({"match": {"path": m.grpc_path}})  # no check: the route answers 404
        elif m.access == "PUBLIC":
            # No token needed, but a token that is sent must be valid.
            rules.append(
                {
                    "match": {"path": m.grpc_path},
                    "requires": {
                        "requires_any": {"requirements": [{"provider_name": provider}, {"allow_missing": {}}]}
                    },
                }
            )
    # Everything else a service serves needs a valid token; paths no service serves fall
    # through to the 404 route.
    for full in sorted({m.full_service for m in catalog.methods()}):
        rules.append({"match": {"prefix": f"/{full}/"}, "requires": {"provider_name": provider}})
    return {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {
                provider: {
                    "issuer": s.jwt_issuer,
                    "audiences": [s.jwt_audience],
                    "remote_jwks": {
                        "http_uri": {
                            "uri": f"http://{s.jwks_host}:{s.listen_port}/api/auth/jwks",
                            "cluster": "jwks",
                            "timeout": "2s",
                        },
                        "cache_duration": f"{s.jwks_cache_seconds}s",
                        "async_fetch": {"fast_listener": True, "failed_refetch_duration": "1s"},
                    },
                    "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}],
                    "forward": True,  # services verify the same token again
                    "clock_skew_seconds": 5,
                    # A token seen before is not verified again (a signature check per request
                    # otherwise); services still verify every token, so a retired key is caught.
                    "jwt_cache_config": {"jwt_cache_size": 10000},
                }
            },
            "rules": rules,
        },
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


def _sse_token_lua() -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.lua.sse_token",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "source_codes": {"sse_token": {"inline_string": (HERE / "sse_token.lua").read_text()}},
        },
    }


def _local_ratelimit() -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.local_ratelimit",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
            "stat_prefix": "http_local_rate_limiter",
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


def _responses_lua(s: GatewaySettings) -> str:
    allowed = ", ".join(f"[{json.dumps(o)}] = true" for o in s.cors_origins)
    return (HERE / "responses.lua").read_text().replace("__ALLOWED_ORIGINS__", allowed)


def _cors(s: GatewaySettings) -> dict[str, Any]:
    """The allow-list, exact origins only (no wildcard: with credentials allowed, a wildcard
    would hand the SSE cookie to any site). No origins: no policy, so no grant at all."""
    if not s.cors_origins:
        return {}
    return {
        "envoy.filters.http.cors": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
            "allow_origin_string_match": [{"exact": o} for o in s.cors_origins],
            "allow_methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
            "allow_headers": "authorization, content-type, idempotency-key, last-event-id, x-request-id, traceparent",
            "expose_headers": "x-request-id, retry-after",
            "max_age": "600",
            "allow_credentials": True,
        }
    }


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
                "default_source_code": {"inline_string": _responses_lua(s)},
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
                "default_source_code": {"inline_string": (HERE / "header_names.lua").read_text()},
                "source_codes": {"health": {"inline_string": lua}},
            },
        },
        _transcoder(s),
        _sse_token_lua(),
        _local_ratelimit(),
        _jwt_authn(s),
        {
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        },
    ]
    hcm: dict[str, Any] = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",  # noqa: E501
        "stat_prefix": "ingress",
        "codec_type": "AUTO",
        "use_remote_address": True,
        "xff_num_trusted_hops": s.xff_num_trusted_hops,
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
        "local_reply_config": _local_reply_config(),
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
                    "typed_per_filter_config": _cors(s),
                    "request_headers_to_remove": IDENTITY_HEADERS,
                    "routes": _routes(s),
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
    from X-Forwarded-For past one trusted hop (the cluster's load balancer or ingress), traces
    to the in-cluster collector."""
    s = GatewaySettings(
        upstreams={svc: (f"{svc}.{namespace}.svc.cluster.local", port) for svc, port in DEFAULT_PORTS.items()},
        admin_host="127.0.0.1",
        stats_port=9902,
        xff_num_trusted_hops=1,
        descriptor_path="/etc/envoy/tradesense.pb",
        cors_origins=("https://app.tradesense.example",),
        console_served_from="/etc/envoy/web",
        otlp_collector=("otel-collector.observability.svc.cluster.local", 4317),
    )
    return write(s, GENERATED / "envoy-k8s.json")


def write_default() -> Path:
    """The config for the default ports (DESIGN.md), checked by `envoy --mode validate` in tests."""
    return write(GatewaySettings(), GENERATED / "envoy.json")
