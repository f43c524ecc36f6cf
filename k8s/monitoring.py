"""Alert rules and Grafana dashboards, as Prometheus Operator and Grafana-sidecar objects.

Every metric named here must exist in the services' real /metrics output; a test checks
it against a running stack.
"""

from __future__ import annotations

import json
from typing import Any

SERVICES = ("auth", "challenges", "market", "risk")


def _meta(name: str, **labels: str) -> dict[str, Any]:
    return {"name": name, "labels": {"app.kubernetes.io/part-of": "tradesense", **labels}}


RULES = [
    {
        "alert": "GrpcErrorRatioHigh",
        "expr": 'sum by (job) (rate(grpc_server_handled_total{grpc_code=~"Unknown|Internal|Unavailable|DataLoss|'
        'DeadlineExceeded|Unimplemented"}[5m])) / sum by (job) (rate(grpc_server_handled_total[5m])) > 0.02',
        "for": "5m",
        "labels": {"severity": "critical"},
        "annotations": {"summary": "{{ $labels.job }}: over 2% of RPCs fail on the server side"},
    },
    {
        "alert": "GrpcLatencyHigh",
        "expr": "histogram_quantile(0.99, sum by (job, le) (rate(grpc_server_handling_seconds_bucket"
        '{grpc_type="unary"}[5m]))) > 0.25',
        "for": "10m",
        "labels": {"severity": "warning"},
        "annotations": {"summary": "{{ $labels.job }}: p99 unary latency above 250 ms"},
    },
    {
        "alert": "PriceFeedStale",
        "expr": "sum(rate(market_price_ticks_total[5m])) == 0 or min(market_provider_healthy) == 0",
        "for": "2m",
        "labels": {"severity": "critical"},
        "annotations": {
            "summary": "no price ticks (crypto trades 24/7) or a provider unhealthy: fills will be refused"
        },
    },
    {
        "alert": "RiskConsumerLagging",
        "expr": "max(challenges_events_last_sequence) - min(risk_consumer_last_sequence) > 500",
        "for": "5m",
        "labels": {"severity": "warning"},
        "annotations": {"summary": "a risk replica is more than 500 challenge events behind"},
    },
    {
        "alert": "BreachSpike",
        "expr": "sum by (rule) (increase(challenges_breaches_total[10m])) > 50",
        "for": "0m",
        "labels": {"severity": "warning"},
        "annotations": {"summary": "{{ $value }} {{ $labels.rule }} breaches in 10 minutes: a bad price?"},
    },
]


def _panel(title: str, expr: str, x: int, y: int, unit: str = "short") -> dict[str, Any]:
    return {
        "type": "timeseries",
        "title": title,
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"expr": expr, "refId": "A", "legendFormat": "{{grpc_method}}"}],
    }


def red_dashboard(service: str) -> dict[str, Any]:
    job = f'job="{service}"'
    return {
        "title": f"TradeSense / {service} (RED)",
        "uid": f"ts-{service}-red",
        "schemaVersion": 39,
        "time": {"from": "now-1h", "to": "now"},
        "panels": [
            _panel(
                "Requests / s", f"sum by (grpc_method) (rate(grpc_server_started_total{{{job}}}[1m]))", 0, 0, "reqps"
            ),
            _panel(
                "Errors / s",
                f'sum by (grpc_method) (rate(grpc_server_handled_total{{{job},grpc_code!="OK"}}[1m]))',
                12,
                0,
            ),
            _panel(
                "p50 / p99 latency",
                f"histogram_quantile(0.99, sum by (grpc_method, le) (rate(grpc_server_handling_seconds_bucket"
                f"{{{job}}}[5m])))",
                0,
                8,
                "s",
            ),
            _panel(
                "Stream messages / s", f"sum by (grpc_method) (rate(grpc_server_msg_sent_total{{{job}}}[1m]))", 12, 8
            ),
        ],
    }


def business_dashboard() -> dict[str, Any]:
    return {
        "title": "TradeSense / business",
        "uid": "ts-business",
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "panels": [
            _panel("Active challenges", "sum(challenges_active)", 0, 0),
            _panel("Trades per minute", "sum(rate(challenges_trades_total[5m])) * 60", 12, 0),
            _panel("Breaches by rule", "sum by (rule) (increase(challenges_breaches_total[1h]))", 0, 8),
            _panel("Price-stream subscribers", "sum(market_stream_subscribers)", 12, 8),
            _panel("Alerts raised", "sum by (kind) (increase(risk_alerts_total[1h]))", 0, 16),
            _panel("Risk consumer position", "max(risk_consumer_last_sequence)", 12, 16),
        ],
    }


def dashboards() -> list[dict[str, Any]]:
    out = []
    for name, board in [*((f"{s}-red", red_dashboard(s)) for s in SERVICES), ("business", business_dashboard())]:
        out.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": _meta(f"dashboard-{name}", grafana_dashboard="1"),
                "data": {f"tradesense-{name}.json": json.dumps(board, indent=2)},
            }
        )
    return out


def rules() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": _meta("tradesense"),
            "spec": {"groups": [{"name": "tradesense", "rules": RULES}]},
        }
    ]


def expressions() -> list[str]:
    """Every PromQL expression shipped, for the test that checks their metrics exist."""
    exprs = [r["expr"] for r in RULES]
    for cm in dashboards():
        for text in cm["data"].values():
            exprs += [t["expr"] for p in json.loads(text)["panels"] for t in p["targets"]]
    return exprs


def files() -> dict[str, list[dict[str, Any]]]:
    return {"prometheus-rules.yaml": rules(), "dashboards.yaml": dashboards()}
