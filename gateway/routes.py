"""The routes: health, the blocked internal methods, browser streams, each service's gRPC
prefix, streamed uploads, CORS preflights, the console's files, and a 404 for the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway import console
from gateway.settings import GatewaySettings
from services.common import catalog


def not_found() -> dict[str, Any]:
    # Plain text: the local reply mapper (_local_reply_config) renders it as a google.rpc.Status.
    return {"status": 404, "body": {"inline_string": "no such route"}}


def _per_client_bucket(s: GatewaySettings) -> dict[str, Any]:
    """/api/auth/*: a token bucket per client address (Envoy's view of it: the peer, or XFF past
    the trusted balancers) and no bucket shared by everyone, which a few clients could drain."""
    return {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
        "stat_prefix": "auth_rate_limit",
        # Required by the filter; never consumed, as every request matches the descriptor.
        "token_bucket": {"max_tokens": 1_000_000, "tokens_per_fill": 1_000_000, "fill_interval": "1s"},
        "always_consume_default_token_bucket": False,
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
            {"append_action": "OVERWRITE_IF_EXISTS_OR_ADD", "header": {"key": "retry-after", "value": "1"}}
        ],
    }


def routes(s: GatewaySettings) -> list[dict[str, Any]]:
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
                    "direct_response": not_found(),
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
                route["route"]["rate_limits"] = [{"actions": [{"remote_address": {}}]}]
                route["typed_per_filter_config"] = {"envoy.filters.http.local_ratelimit": _per_client_bucket(s)}
                # Envoy's own JWKS fetch (jwt_authn, from loopback) outside the buckets: a
                # client's burst must never leave the gateway unable to verify tokens.
                jwks = next(m for m in methods if m.service == "auth" and m.name == "GetJwks")
                routes.append({"match": {"path": jwks.grpc_path}, "route": {"cluster": svc, "timeout": "0s"}})
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
    routes.append({"match": {"prefix": "/"}, "direct_response": not_found()})
    return routes
