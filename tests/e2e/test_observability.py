"""Observability against the running suite: every metric a dashboard or an alert rule
queries exists in the services' real /metrics output."""

from __future__ import annotations

import re

import httpx
import pytest

from devstack.stack import Stack
from k8s import monitoring

pytestmark = pytest.mark.e2e

PROMQL_WORDS = {
    "sum",
    "rate",
    "increase",
    "by",
    "without",
    "histogram_quantile",
    "max",
    "min",
    "or",
    "and",
    "unless",
    "avg",
    "count",
    "time",
    "le",
    "job",
    "grpc_method",
    "grpc_code",
    "grpc_type",
    "rule",
    "kind",
    "on",
    "ignoring",
}


def exported_names(stack: Stack) -> set[str]:
    names: set[str] = set()
    for svc in ("auth", "challenges", "market", "risk"):
        for line in httpx.get(stack.metrics_url(svc), timeout=5).text.splitlines():
            if line.startswith("# TYPE "):
                base = line.split()[2]
                names |= {base, f"{base}_total", f"{base}_bucket", f"{base}_sum", f"{base}_count"}
            elif line and not line.startswith("#"):
                names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def queried_names() -> set[str]:
    names = set()
    for expr in monitoring.expressions():
        expr = re.sub(r'"[^"]*"', '""', expr)  # drop label values
        expr = re.sub(r"\{[^}]*\}", "", expr)  # and label matchers
        expr = re.sub(r"\[[^\]]*\]", "", expr)  # and ranges
        for word in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
            if word not in PROMQL_WORDS:
                names.add(word)
    return names


def test_every_queried_metric_is_exported(stack: Stack) -> None:
    httpx.get(f"{stack.gateway_url}/api/market/symbols")  # at least one RPC everywhere it matters
    missing = queried_names() - exported_names(stack)
    assert not missing, f"dashboards or alerts query metrics no service exports: {sorted(missing)}"
    assert {"grpc_server_handled_total", "challenges_trades_total", "market_stream_subscribers"} <= queried_names()
