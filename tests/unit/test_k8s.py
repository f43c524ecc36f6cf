"""Kubernetes manifests and container images, checked offline: they build, every object
survives the official client's models, the security scan passes, the Dockerfiles lint."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient

from k8s import monitoring, render

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
OVERLAYS = ("dev", "prod")
MODELS = {
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Service"): "V1Service",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("v1", "Secret"): "V1Secret",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("apps/v1", "StatefulSet"): "V1StatefulSet",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "V2HorizontalPodAutoscaler",
    ("networking.k8s.io/v1", "NetworkPolicy"): "V1NetworkPolicy",
}
CRDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("cert-manager.io/v1", "Certificate"),
}


def build(overlay: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(BIN / "kubectl"), "kustomize", str(ROOT / "k8s" / "overlays" / overlay)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return [o for o in yaml.safe_load_all(out.stdout) if o]


def test_committed_base_is_what_the_renderer_writes() -> None:
    for name, text in render.render_text().items():
        assert (ROOT / "k8s" / "base" / name).read_text() == text, f"k8s/base/{name} is stale: run python -m k8s.render"


def _strip_nulls(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _strip_nulls(v) for k, v in x.items() if v is not None}
    if isinstance(x, list):
        return [_strip_nulls(v) for v in x]
    return x


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_survives_the_kubernetes_models(overlay: str) -> None:
    client = ApiClient()
    kinds = set()
    for obj in build(overlay):
        key = (obj["apiVersion"], obj["kind"])
        kinds.add(key)
        if key in CRDS:
            assert obj["metadata"]["name"] and isinstance(obj["spec"], dict)
            continue
        assert key in MODELS, f"no schema check for {key}"
        model = client.deserialize(json.dumps(obj), MODELS[key], "application/json")
        back = _strip_nulls(client.sanitize_for_serialization(model))
        assert back == obj, f"{key} {obj['metadata']['name']}: fields lost in the model round trip"
    assert ("apps/v1", "Deployment") in kinds and ("networking.k8s.io/v1", "NetworkPolicy") in kinds


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_locked_down_and_probed(overlay: str) -> None:
    deployments = [o for o in build(overlay) if o["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {"auth", "challenges", "market", "risk", "gateway"}
    for d in deployments:
        pod = d["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False and pod["securityContext"]["runAsNonRoot"] is True
        for c in pod["containers"] + pod.get("initContainers", []):
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] and sc["capabilities"]["drop"] == ["ALL"]
            assert sc["allowPrivilegeEscalation"] is False and sc["seccompProfile"]["type"] == "RuntimeDefault"
            assert c["resources"]["requests"] and c["resources"]["limits"]
            assert not any("valueFrom" in e for e in c.get("env", [])), "secrets as files, not env"
        main = pod["containers"][0]
        assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(main)
    services = {o["metadata"]["name"]: o for o in build(overlay) if o["kind"] == "Service"}
    for name in ("auth", "challenges", "market", "risk"):
        assert services[name]["spec"]["clusterIP"] == "None"  # headless: per-request balancing


def test_in_production_the_order_path_is_guaranteed_a_whole_cpu() -> None:
    # Guaranteed QoS (every container: requests = limits, CPU and memory) with an integer CPU
    # is what the kubelet's static CPU manager turns into a core of the pod's own.
    pods = {o["metadata"]["name"]: o["spec"]["template"]["spec"] for o in build("prod") if o["kind"] == "Deployment"}
    challenges = pods["challenges"]
    for c in challenges["containers"] + challenges["initContainers"]:
        assert c["resources"]["requests"] == c["resources"]["limits"], c["name"]
        assert set(c["resources"]["requests"]) == {"cpu", "memory"}
    assert challenges["containers"][0]["resources"]["requests"]["cpu"] == "1"
    gateway = pods["gateway"]["containers"][0]["resources"]
    assert gateway["requests"] != gateway["limits"]  # the others burst above their requests on shared cores


def test_network_policies_allow_only_the_real_call_paths() -> None:
    policies = {o["metadata"]["name"]: o for o in build("prod") if o["kind"] == "NetworkPolicy"}
    assert policies["default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}

    def callers(svc: str) -> set[str]:
        rule = policies[svc]["spec"]["ingress"][0]
        return {f["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for f in rule["from"]}

    assert callers("market") == {"gateway", "challenges", "risk"}
    assert callers("challenges") == {"gateway", "risk"}
    assert callers("auth") == {"gateway", "challenges", "market", "risk"}
    assert callers("risk") == {"gateway", "challenges"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_security_scan_has_no_unexplained_finding(overlay: str, tmp_path: Path) -> None:
    checkov = ROOT / ".tools" / "checkov" / "bin" / "checkov"
    if not checkov.exists():
        pytest.fail("checkov is installed by `make test`; run it through make")
    manifest = tmp_path / f"{overlay}.yaml"
    manifest.write_text(yaml.safe_dump_all(build(overlay)))
    out = subprocess.run(
        [str(checkov), "-f", str(manifest), "--config-file", str(ROOT / "k8s" / "checkov.yaml"), "-o", "json"],
        capture_output=True,
        text=True,
    )
    report = json.loads(out.stdout)
    report = report if isinstance(report, dict) else report[0]
    failed = [(c["check_id"], c["resource"]) for c in report["results"].get("failed_checks", [])]
    assert failed == []
    assert report["summary"]["passed"] > 100 and report["summary"]["failed"] == 0


@pytest.mark.parametrize(
    "dockerfile",
    [
        "docker/base.Dockerfile",
        "gateway/Dockerfile",
        "services/auth/Dockerfile",
        "services/challenges/Dockerfile",
        "services/market/Dockerfile",
        "services/risk/Dockerfile",
    ],
)
def test_dockerfiles_lint_clean(dockerfile: str) -> None:
    text = (ROOT / dockerfile).read_text()
    assert "USER 10001" in text  # non-root
    out = subprocess.run([str(BIN / "hadolint"), str(ROOT / dockerfile)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dashboards_and_rules_are_labelled_for_grafana_and_prometheus() -> None:
    objs = build("prod")
    boards = [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert len(boards) == 5
    assert {r["alert"] for r in monitoring.RULES} == {
        "GrpcErrorRatioHigh",
        "GrpcLatencyHigh",
        "PriceFeedStale",
        "RiskConsumerLagging",
        "BreachSpike",
    }
    monitors = {o["metadata"]["name"] for o in objs if o["kind"] == "ServiceMonitor"}
    assert monitors == {"auth", "challenges", "market", "risk", "gateway"}


def test_the_nats_configuration_is_valid_for_the_real_server(tmp_path: Path) -> None:
    """nats-server itself checks the rendered configuration (TLS files, the included password
    variables, every user's permissions), with a throwaway certificate in place of cert-manager's."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nats")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "tls").mkdir()
    (tmp_path / "auth").mkdir()
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "tls" / "tls.crt").write_bytes(pem)
    (tmp_path / "tls" / "ca.crt").write_bytes(pem)
    (tmp_path / "tls" / "tls.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (tmp_path / "auth" / "passwords.conf").write_text('MARKET_PASSWORD: "a"\nMONITOR_PASSWORD: "b"\n')
    conf = tmp_path / "nats.conf"
    conf.write_text(render.nats_config().replace("/etc/nats", str(tmp_path)))
    r = subprocess.run(
        [str(BIN / "nats-server"), "-c", str(conf), "-t"], capture_output=True, text=True, env={"POD_NAME": "nats-0"}
    )
    assert r.returncode == 0, r.stderr + r.stdout
    assert "authorization" in conf.read_text() and "permissions" in conf.read_text()
