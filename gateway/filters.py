"""The HTTP filters' configurations: Envoy's local replies as google.rpc.Status, the JSON
transcoder, token verification at the edge, the Lua scripts, rate limits and CORS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway.settings import GatewaySettings
from services.common import catalog

HERE = Path(__file__).resolve().parent


# Envoy's own refusals (bad JSON, missing token, body too large, no healthy upstream, rate
# limit, our 404s) are text/plain by default; browsers and the OpenAPI description expect
# the same google.rpc.Status JSON the transcoder renders for a service's error.
LOCAL_REPLY_CODES = {
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


def local_reply_config() -> dict[str, Any]:
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
            for status, code in sorted(LOCAL_REPLY_CODES.items())
        ]
    }


def transcoder(s: GatewaySettings) -> dict[str, Any]:
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


def jwt_authn(s: GatewaySettings) -> dict[str, Any]:
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


def sse_token_lua() -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.lua.sse_token",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "source_codes": {"sse_token": {"inline_string": (HERE / "sse_token.lua").read_text()}},
        },
    }


def local_ratelimit() -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.local_ratelimit",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
            "stat_prefix": "http_local_rate_limiter",
        },
    }


def _allowed_origins(s: GatewaySettings) -> str:
    return ", ".join(f"[{json.dumps(o)}] = true" for o in s.cors_origins)


def responses_lua(s: GatewaySettings) -> str:
    hsts = f"max-age={s.hsts_max_age_seconds}; includeSubDomains" if s.hsts_max_age_seconds else ""
    return (
        (HERE / "responses.lua")
        .read_text()
        .replace("__ALLOWED_ORIGINS__", _allowed_origins(s))
        .replace("__HSTS__", hsts)
    )


def request_checks_lua(s: GatewaySettings) -> str:
    return (HERE / "request_checks.lua").read_text().replace("__ALLOWED_ORIGINS__", _allowed_origins(s))


def cors(s: GatewaySettings) -> dict[str, Any]:
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
