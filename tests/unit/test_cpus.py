"""CPU placement of a stack's processes: the split of the cores, and every thread of every
process of a tree moved, later threads included."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from devstack import cpus


def test_the_dedicated_processes_get_the_highest_cores_one_each_at_most_half_the_machine() -> None:
    assert cpus.split(1, {0, 1}) == ({1}, {0})
    assert cpus.split(2, range(8)) == ({6, 7}, {0, 1, 2, 3, 4, 5})
    assert cpus.split(3, range(4)) == ({2, 3}, {0, 1})  # never more than half
    assert cpus.split(1, {0}) == ({0}, {0})  # one core: nothing to split
    assert cpus.split(0, {0, 1}) == ({0, 1}, {0, 1})  # nobody dedicated: all shared


# A parent with a second thread and a child (forked before placement) that starts a thread after it.
_TREE = """
import os, sys, threading, time
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
if os.fork() == 0:
    sys.stdin.readline()  # placed by now
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
    print(os.getpid(), flush=True)
    time.sleep(60)
    os._exit(0)
print(os.getpid(), flush=True)
time.sleep(60)
"""


@pytest.fixture
def tree() -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-c", _TREE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()  # the parent's pid: both threads exist
    yield proc
    for p in [proc.pid, *_children(proc.pid)]:
        try:
            os.kill(p, 9)
        except ProcessLookupError:
            pass
    proc.wait()
    cpus.place_pids([], [])  # every thread of this process back on every core, whatever failed


def _children(pid: int) -> list[int]:
    return [p.pid for p in psutil.Process(pid).children()]


def _affinities(pid: int) -> set[frozenset[int]]:
    return {frozenset(os.sched_getaffinity(int(t))) for t in os.listdir(f"/proc/{pid}/task")}


@pytest.mark.skipif(len(cpus.ALL_CORES) < 2, reason="needs two cores to split")
def test_a_dedicated_tree_runs_on_its_own_core_and_everything_else_with_the_caller_on_the_rest(
    tree: subprocess.Popen[str],
) -> None:
    deadline = time.monotonic() + 10
    while not _children(tree.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    (child,) = _children(tree.pid)
    own, rest = cpus.split(1)
    other = subprocess.Popen(["sleep", "60"])
    try:
        cpus.place_pids([tree.pid], [other.pid])
        assert tree.stdin is not None and tree.stdout is not None
        tree.stdin.write("go\n")
        tree.stdin.flush()
        assert int(tree.stdout.readline()) == child  # its thread started after the placement
        assert _affinities(tree.pid) == {own} and len(os.listdir(f"/proc/{tree.pid}/task")) == 2
        assert _affinities(child) == {own} and len(os.listdir(f"/proc/{child}/task")) == 2
        assert _affinities(other.pid) == {rest}
        assert os.sched_getaffinity(0) == rest  # the caller: a benchmark's client
        cpus.place_pids([], [tree.pid, other.pid])  # all shared again
        assert _affinities(tree.pid) == _affinities(child) == _affinities(other.pid) == {cpus.ALL_CORES}
        assert os.sched_getaffinity(0) == cpus.ALL_CORES
    finally:
        other.kill()
        other.wait()
