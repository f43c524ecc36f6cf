"""Machine facts, medians and the RESULTS.md writer shared by the benchmarks."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

if TYPE_CHECKING:
    from devstack.stack import Stack

HERE = Path(__file__).resolve().parent
RAW = HERE / "results"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.node() or 'host'}: {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, Python {platform.python_version()}"  # noqa: E501


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def save(name: str, payload: dict[str, Any]) -> None:
    RAW.mkdir(exist_ok=True)
    payload = {
        "benchmark": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **payload,
    }
    (RAW / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")


def git_rev() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def write_results() -> Path:
    """Render every recorded benchmark into bench/RESULTS.md."""
    out = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`python -m bench`); each figure is the median of several runs.",
        "Raw numbers per benchmark are in `bench/results/*.json`.",
        "",
    ]
    for path in sorted(RAW.glob("*.json")):
        data = json.loads(path.read_text())
        out += [
            f"## {data['benchmark']}",
            "",
            f"- date: {data['date']}",
            f"- machine: {data['machine']}",
            f"- command: `{data.get('command', 'make bench')}`",
            f"- commit: {data.get('commit', '?')}",
            "",
        ]
        if data.get("notes"):
            out += [data["notes"], ""]
        for table in data.get("tables", []):
            out += [
                f"**{table['title']}**",
                "",
                "| " + " | ".join(table["columns"]) + " |",
                "|" + "---|" * len(table["columns"]),
            ]
            out += ["| " + " | ".join(str(c) for c in row) + " |" for row in table["rows"]]
            out.append("")
    path = HERE / "RESULTS.md"
    path.write_text("\n".join(out) + "\n")
    return path


def cpu_by_process(stack: Stack) -> dict[str, dict[int, float]]:
    """CPU seconds so far of every process of the stack, by role and pid (PostgreSQL's
    backends are children of its postmaster; enumerated afresh, so new backends count, and
    exited ones are found in what their parent reaped)."""
    me = psutil.Process()
    procs: list[tuple[str, psutil.Process]] = [("client (this bench)", me)]  # not its children: they are the stack
    roots = [("envoy" if name == "gateway" else name.split("-")[0], proc.pid) for name, proc in stack.procs.items()]
    if stack.pg is not None and stack.pg.proc is not None:
        roots.append(("postgres", stack.pg.proc.pid))
    out: dict[str, dict[int, float]] = {}
    for role, pid in roots:
        root = psutil.Process(pid)
        procs += [(role, p) for p in [root, *root.children(recursive=True)]]
        # Children that exited (PostgreSQL backends of closed pool connections) leave their time
        # with the parent that reaped them; under the negated pid so it is its own entry.
        t = root.cpu_times()
        out.setdefault(role, {})[-pid] = t.children_user + t.children_system
    for role, p in procs:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        out.setdefault(role, {})[p.pid] = t.user + t.system
    return out
