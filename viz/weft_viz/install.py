"""`weft viz install`: Prometheus with the shipped scrape configuration, and the
dashboard, in their own namespace. Pure: the manifests as objects, from the options.

Neither is meshed (as Linkerd's viz Prometheus scrapes the proxies' admin ports, which
proxy-init leaves unredirected). Both read through ServiceAccounts with read-only RBAC:
Prometheus lists pods for discovery; the dashboard reads pods, Services and Weft's
kinds, and nothing else. Tap, which shows requests' paths and identities, is served by
the dashboard only when the install says so (`tap=True`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from weft_api import mesh
from weft_viz.scrape import scrape_config

NAMESPACE = "weft-viz"
PROMETHEUS = "prometheus"
DASHBOARD = "weft-dashboard"
PROMETHEUS_IMAGE = "prom/prometheus:v2.53.2"
PROMETHEUS_PORT = 9090
DASHBOARD_PORT = 8084  # Linkerd's viz web port
SCRAPE_INTERVAL = "10s"  # Linkerd's viz Prometheus'
RETENTION = "6h"  # as Linkerd's viz: a window for dashboards, not long-term storage
PART_OF = {"app.kubernetes.io/part-of": "weft", "app.kubernetes.io/component": "viz"}

# Read-only, and only what the pages show (Linkerd's web reads as much).
DASHBOARD_READS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("", ("namespaces", "pods", "services", "serviceaccounts")),
    ("apps", ("deployments", "replicasets", "statefulsets", "daemonsets")),
    ("split.smi-spec.io", ("trafficsplits",)),
    ("specs.smi-spec.io", ("httproutegroups", "tcproutes", "udproutes")),
    ("access.smi-spec.io", ("traffictargets", "identitybindings")),
    ("linkerd.io", ("serviceprofiles",)),
    (
        "policy.linkerd.io",
        (
            "servers",
            "serverauthorizations",
            "authorizationpolicies",
            "meshtlsauthentications",
            "networkauthentications",
            "httproutes",
        ),
    ),
)


@dataclass(frozen=True)
class VizOptions:
    namespace: str = NAMESPACE
    image: str = f"{mesh.CONTROL_PLANE_IMAGE}:{mesh.PROXY_VERSION}"
    prometheus_image: str = PROMETHEUS_IMAGE
    tap: bool = False  # serve live tap to whoever reaches the dashboard's port
    # Where the mesh's control plane runs: with `tap`, the dashboard taps as `weft tap`
    # does, with the certificate of weft-cli that its Role there (weft-tap) lets it get.
    control_plane_namespace: str = mesh.DEFAULT_CONTROL_PLANE_NAMESPACE
    # Use a Prometheus of your own (with the shipped scrape config) instead of one here.
    prometheus_url: str = ""


def prometheus_config(interval: str = SCRAPE_INTERVAL) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": interval, "scrape_timeout": interval},
        "scrape_configs": [scrape_config()],
    }


def _meta(name: str, options: VizOptions, **labels: str) -> dict[str, Any]:
    return {"name": name, "namespace": options.namespace, "labels": {**PART_OF, **labels}}


def _cluster_role(name: str, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name, "labels": dict(PART_OF)},
            "rules": rules,
        }
    ]


def _binding(name: str, account: str, options: VizOptions) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": dict(PART_OF)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": options.namespace}],
    }


def _deployment(
    name: str, options: VizOptions, account: str, container: dict[str, Any], **spec: Any
) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, options, **labels),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": {**PART_OF, **labels}},
                "spec": {
                    "serviceAccountName": account,
                    "containers": [container],
                    "securityContext": {"runAsNonRoot": True},
                    **spec,
                },
            },
        },
    }


def _service(name: str, port: int, options: VizOptions) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, options),
        "spec": {
            "selector": {"app.kubernetes.io/name": name},
            "ports": [{"name": "http", "port": port, "targetPort": port}],
        },
    }


def _account(name: str, options: VizOptions) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name, options)}


def prometheus_objects(options: VizOptions) -> list[dict[str, Any]]:
    role = f"{options.namespace}-{PROMETHEUS}"
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(f"{PROMETHEUS}-config", options),
        "data": {"prometheus.yml": yaml.safe_dump(prometheus_config(), sort_keys=False)},
    }
    container = {
        "name": PROMETHEUS,
        "image": options.prometheus_image,
        "args": [
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/data",
            f"--storage.tsdb.retention.time={RETENTION}",
            f"--web.listen-address=0.0.0.0:{PROMETHEUS_PORT}",
        ],
        "ports": [{"name": "http", "containerPort": PROMETHEUS_PORT}],
        "readinessProbe": {"httpGet": {"path": "/-/ready", "port": PROMETHEUS_PORT}},
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/prometheus", "readOnly": True},
            {"name": "data", "mountPath": "/data"},
        ],
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "runAsUser": 65534},
    }
    volumes = [
        {"name": "config", "configMap": {"name": f"{PROMETHEUS}-config"}},
        {"name": "data", "emptyDir": {}},
    ]
    return [
        _account(PROMETHEUS, options),
        *_cluster_role(
            role, [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
        ),
        _binding(role, PROMETHEUS, options),
        config,
        _deployment(PROMETHEUS, options, PROMETHEUS, container, volumes=volumes),
        _service(PROMETHEUS, PROMETHEUS_PORT, options),
    ]


def prometheus_url(options: VizOptions) -> str:
    if options.prometheus_url:
        return options.prometheus_url
    return f"http://{PROMETHEUS}.{options.namespace}.svc.cluster.local.:{PROMETHEUS_PORT}"


def dashboard_objects(options: VizOptions) -> list[dict[str, Any]]:
    role = f"{options.namespace}-{DASHBOARD}"
    rules = [
        {"apiGroups": [group], "resources": list(resources), "verbs": ["get", "list", "watch"]}
        for group, resources in DASHBOARD_READS
    ]
    args = [
        "weft_viz",
        f"--prometheus={prometheus_url(options)}",
        f"--listen=0.0.0.0:{DASHBOARD_PORT}",
        *([f"--tap={options.control_plane_namespace}"] if options.tap else []),
    ]
    container = {
        "name": "dashboard",
        "image": options.image,
        "args": args,
        "ports": [{"name": "http", "containerPort": DASHBOARD_PORT}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": DASHBOARD_PORT}},
        "resources": {"requests": {"cpu": "20m", "memory": "64Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    tap = [_tap_binding(options)] if options.tap else []
    return [
        _account(DASHBOARD, options),
        *_cluster_role(role, rules),
        _binding(role, DASHBOARD, options),
        *tap,
        _deployment(DASHBOARD, options, DASHBOARD, container),
        _service(DASHBOARD, DASHBOARD_PORT, options),
    ]


def _tap_binding(options: VizOptions) -> dict[str, Any]:
    """The install's Role weft-tap (tokens of weft-cli, the trust roots, the identity
    service's pods), bound to the dashboard: injected proxies admit only weft-cli."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": f"{options.namespace}-{DASHBOARD}-tap",
            "namespace": options.control_plane_namespace,
            "labels": dict(PART_OF),
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": mesh.TAP_ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": DASHBOARD, "namespace": options.namespace}],
    }


def manifests(options: VizOptions) -> list[dict[str, Any]]:
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": options.namespace,
            "labels": dict(PART_OF),
            # Scraping and tapping the mesh from outside it, as Linkerd's viz does.
            "annotations": {mesh.INJECT_ANNOTATION: mesh.INJECT_DISABLED},
        },
    }
    prometheus = [] if options.prometheus_url else prometheus_objects(options)
    return [namespace, *prometheus, *dashboard_objects(options)]


def render(options: VizOptions) -> str:
    header = (
        f"# Weft viz {mesh.PROXY_VERSION}, rendered by `weft viz install`: pipe it to "
        "`kubectl apply -f -`.\n"
    )
    return header + yaml.safe_dump_all(manifests(options), sort_keys=False)
