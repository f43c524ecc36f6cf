"""Environment configuration shared by every service (pydantic-settings)."""

from __future__ import annotations

import os
from typing import TypeVar

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Settings read from the environment; every field has a local-development default.

    The service name decides the defaults for ports and schema (see DESIGN.md).
    """

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    service_name: str = "service"
    grpc_host: str = "0.0.0.0"
    grpc_port: int = 0
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 0
    # postgresql://user:password@host:port/dbname — any server; `make run` points it at
    # the embedded PostgreSQL it starts.
    database_url: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5432/tradesense")
    db_schema: str = ""
    # Off where an init container (or a Job) migrates before the service starts.
    migrate_on_start: bool = True
    # A fixed pool, no overflow: under load, overflow connections were opened and closed
    # around single orders (a PostgreSQL backend forked per order: 1.6 vs 1.1 ms of database
    # CPU per order at 64 clients, bench.orders). Same ceiling of 20 connections per process.
    db_pool_size: int = 20
    db_max_overflow: int = 0
    # Every connection's limits (server settings): a statement past the first is cancelled, a
    # transaction left idle past the second ends its session.
    db_statement_timeout_ms: int = 30_000
    db_idle_in_transaction_timeout_ms: int = 60_000
    log_level: str = "INFO"
    # Seconds to keep serving after health goes NOT_SERVING, so load balancers notice.
    shutdown_drain_seconds: float = 0.5
    shutdown_grace_seconds: float = 10.0
    otel_exporter_otlp_endpoint: str = ""
    # Seconds between the comment lines a quiet browser stream (SSE) gets, so no idle timeout
    # (the gateway's is 300 s, a proxy's may be 60 s) cuts it.
    sse_heartbeat_seconds: float = 15.0
    sentry_dsn: SecretStr = SecretStr("")
    environment: str = "development"
    # Other services' gRPC addresses (host:port).
    auth_addr: str = "127.0.0.1:50051"
    challenges_addr: str = "127.0.0.1:50052"
    market_addr: str = "127.0.0.1:50053"
    risk_addr: str = "127.0.0.1:50054"
    jwt_issuer: str = "tradesense-auth"
    jwt_audience: str = "tradesense"
    # The audience of service tokens (IssueServiceToken): services accept it, the public
    # gateway does not, so a leaked service token is no key to the API from outside.
    jwt_service_audience: str = "tradesense-internal"
    # How long auth's access tokens live; every service keeps token cut-offs that long.
    access_token_ttl_seconds: int = 900
    # Server streams (SSE) one user may hold open on one process (services/common/stream_limits.py).
    streams_per_user: int = 10
    # Anonymous streams (public prices) per client address and in all, per process.
    anonymous_streams_per_address: int = 20
    anonymous_streams_total: int = 500
    # Peers whose x-envoy-external-address is believed (the gateway): CIDRs, comma-separated.
    # Empty: nobody's; every caller is its socket peer (services/common/client_address.py).
    trusted_proxies: str = ""
    # This service's own credentials for service-to-service calls (IssueServiceToken).
    service_client_secret: SecretStr = SecretStr("")
    # Signs page tokens (services/common/pagination.py); every replica of a service needs the
    # same one, or a token from one replica is refused by another.
    page_token_secret: SecretStr = SecretStr("")
    uvloop: bool = True
    extra: dict[str, str] = Field(default_factory=dict)

    @property
    def schema_name(self) -> str:
        return self.db_schema or self.service_name

    @property
    def async_database_url(self) -> str:
        url = self.database_url.get_secret_value()
        for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+asyncpg://" + url[len(prefix) :]
        raise ValueError("DATABASE_URL must be a postgresql:// URL")


S = TypeVar("S", bound="ServiceSettings")


def load(cls: type[S], service_name: str, grpc_port: int, metrics_port: int) -> S:
    # In Kubernetes secrets are mounted as files, one per setting, in SECRETS_DIR.
    secrets_dir = os.environ.get("SECRETS_DIR")
    # pydantic-settings' init-time option; its plugin-less typing does not know it.
    s = cls(service_name=service_name, _secrets_dir=secrets_dir) if secrets_dir else cls(service_name=service_name)  # type: ignore[call-arg]
    updates: dict[str, object] = {}
    if s.grpc_port == 0:
        updates["grpc_port"] = grpc_port
    if s.metrics_port == 0:
        updates["metrics_port"] = metrics_port
    return s.model_copy(update=updates)
