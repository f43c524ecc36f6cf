"""Which cores the processes of a running stack may use: shared, or some services on cores of
their own (what Kubernetes's static CPU manager gives a Guaranteed pod with whole CPUs).

Measured on the 2-core VM (docs/challenges.md, "A core of its own"): at the same 600-700
orders/s, with every process free to run anywhere, the order path's p99 ranged 17-117 ms
over six runs; with challenges alone on one core and everything else on the other it was
13-20 ms. Challenges is one busy event-loop thread; shared, every wake-up of Envoy, a
PostgreSQL backend or the client preempts it, and its orders queue behind the preemptions.

A placement is applied to what runs now, thread by thread: threads and processes started
later (a pool's new PostgreSQL backend, a gRPC worker thread) inherit their parent's cores.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from devstack.stack import Stack

# The cores this machine gives us, read before anything here narrows the caller's own set.
ALL_CORES = frozenset(os.sched_getaffinity(0))


def split(dedicated: int, cores: Collection[int] = ALL_CORES) -> tuple[frozenset[int], frozenset[int]]:
    """(the dedicated processes' cores, everyone else's): as many of the highest-numbered cores
    as there are dedicated processes (which share them), never more than half the machine; with
    a single core there is nothing to split and both are the whole set."""
    ordered = sorted(cores)
    n = min(dedicated, len(ordered) // 2)
    if n == 0:
        return frozenset(ordered), frozenset(ordered)
    return frozenset(ordered[-n:]), frozenset(ordered[:-n])


def _threads(pid: int) -> Iterator[int]:
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            yield int(tid)
    except FileNotFoundError:  # exited meanwhile
        return


def _pin_threads(pid: int, cores: Collection[int]) -> None:
    for tid in _threads(pid):
        try:
            os.sched_setaffinity(tid, cores)
        except (ProcessLookupError, PermissionError):
            pass  # gone, or not ours to move (a server running as another user)


def _tree(pid: int) -> list[int]:
    """A process and its descendants (none once it has exited)."""
    try:
        return [pid, *(p.pid for p in psutil.Process(pid).children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


def pin_tree(pid: int, cores: Collection[int]) -> None:
    """Every thread of a process and of its descendants onto `cores`."""
    for proc in _tree(pid):
        _pin_threads(proc, cores)


def place_pids(dedicated: Collection[int], others: Collection[int]) -> None:
    """The `dedicated` process trees on cores of their own, the `others` and the caller on the
    rest (the caller's own threads only: its children are among the others, or not ours)."""
    own, rest = split(len(dedicated))
    for pid in dedicated:
        pin_tree(pid, own)
    for pid in others:
        pin_tree(pid, rest)
    _pin_threads(os.getpid(), rest)


def place(stack: Stack, dedicated: Collection[str] = (), also: Collection[int] = ()) -> None:
    """Services named in `dedicated` (every replica of each) and the processes `also` (a
    benchmark's load clients) on cores of their own, every other process of the stack
    (PostgreSQL's too) and the caller on the rest; nothing dedicated makes every core shared."""
    mine = [*also, *(proc.pid for name, proc in stack.procs.items() if name.split("-")[0] in dedicated)]
    others = [proc.pid for name, proc in stack.procs.items() if name.split("-")[0] not in dedicated]
    if stack.pg is not None and stack.pg.proc is not None:
        others.append(stack.pg.proc.pid)
    place_pids(mine, others)


def lower_priority(stack: Stack, services: Collection[str], niceness: int = 10) -> None:
    """Every thread of the named services (each replica) at a lower CPU priority: background
    consumers (risk follows the outbox with a lag it catches up) yield the core to the request
    path when both want it, as a lower CPU request does in Kubernetes. Threads started later
    inherit it."""
    for name, proc in stack.procs.items():
        if name.split("-")[0] not in services:
            continue
        for pid in _tree(proc.pid):
            for tid in _threads(pid):
                try:
                    os.setpriority(os.PRIO_PROCESS, tid, niceness)
                except (ProcessLookupError, PermissionError):
                    pass
