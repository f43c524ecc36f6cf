"""Children started by devstack: never killed by the parent's gRPC state, and gone with the parent."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from devstack import procs
from devstack.stack import free_port


def test_children_start_while_the_parent_is_busy_with_grpc(tmp_path: Path) -> None:
    # With Python code run between fork and exec, grpcio restarted its poller in the child,
    # which aborted on the descriptors close_fds had closed: ~2% of children died with SIGABRT.
    port = free_port()
    server = grpc.server(futures.ThreadPoolExecutor(2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    stop = threading.Event()

    def busy() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            while not stop.is_set():
                stub.Check(health_pb2.HealthCheckRequest())

    caller = threading.Thread(target=busy)
    caller.start()
    try:
        codes = [procs.spawn(["true"], log_path=tmp_path / "child.log").wait() for _ in range(300)]
    finally:
        stop.set()
        caller.join()
        server.stop(0)
    assert set(codes) == {0}, (codes.count(-signal.SIGABRT), procs.tail(tmp_path / "child.log", 3))


@pytest.mark.skipif(procs.command(["x"], signal.SIGTERM) == ["x"], reason="no setpriv: no death signal here")
def test_a_child_dies_with_its_parent(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from devstack import procs; "
            "p = procs.spawn(['sleep', '60'], log_path=Path(sys.argv[1]) / 'sleep.log'); "
            "Path(sys.argv[1], 'child.pid').write_text(str(p.pid)); p.wait()",
            str(tmp_path),
        ],
        cwd=Path(__file__).resolve().parents[2],
    )
    deadline = time.monotonic() + 20
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(pid_file.read_text())
    assert _alive(child)
    parent.kill()  # kill -9: no chance to clean up
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not _alive(child):
            return
        time.sleep(0.05)
    pytest.fail("the child outlived its parent")


def _alive(pid: int) -> bool:
    """Running, not gone nor a zombie (an exited child waits to be reaped by whoever adopted it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"
