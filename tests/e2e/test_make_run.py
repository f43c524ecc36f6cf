"""`make run`'s supervisor as a user runs it: up, usable, Ctrl-C, nothing left, data kept."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from devstack.stack import ROOT
from tests.helpers import PASSWORD, new_email

pytestmark = pytest.mark.e2e


def _start(data: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "TRADESENSE_DATA": str(data), "TRADESENSE_FREE_PORTS": "1"}
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"gateway\s+(http://localhost:\d+)", line)
        if m:
            return proc, m.group(1)
    proc.kill()
    raise AssertionError("".join(lines))


def _descendants_using(data: Path) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline", "environ"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            env = p.info["environ"] or {}
        except (psutil.Error, TypeError):
            continue
        if str(data) in cmd or env.get("TRADESENSE_DATA") == str(data) or str(data) in env.get("AUTH_KEYS_DIR", ""):
            found.append(p)
    return found


def test_run_prints_gateway_stops_cleanly_and_keeps_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc, url = _start(data)
    email = new_email()
    try:
        assert httpx.get(f"{url}/health", timeout=5).json()["status"] == "SERVING"
        # Loopback only unless GATEWAY_HOST says otherwise (issue 26): not the café's network.
        port = int(url.rsplit(":", 1)[1])
        listening = {c.laddr.ip for c in psutil.net_connections("tcp") if c.status == "LISTEN" and c.laddr.port == port}
        assert listening == {"127.0.0.1"}, listening
        r = httpx.post(f"{url}/api/auth/register", json={"email": email, "password": PASSWORD}, timeout=10)
        assert r.status_code == 200, r.text
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 6  # postgres (+ its workers), four services, envoy
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "stopped." in out
    time.sleep(0.5)
    assert _descendants_using(data) == []
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in children)

    # A second run keeps the data: the account registered above can log in.
    proc, url = _start(data)
    try:
        r = httpx.post(f"{url}/api/auth/login", json={"email": email, "password": PASSWORD}, timeout=10)
        assert r.status_code == 200, r.text
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert proc.returncode == 0
