"""The bookshop sample (samples/01-bookshop) on the local cluster: its manifests applied
into a namespace of the caller's choice, meshed by injection, and a wait until every
workload is rolled out. `weft demo` and the e2e suite deploy it the same way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from weft_api import mesh
from weft_cli import local_install
from weft_localcluster.cluster import ClusterInfo
from weft_localcluster.nodeagent.images import BOOKSHOP, DEFAULT_SAMPLES_DIR

MANIFESTS = DEFAULT_SAMPLES_DIR / BOOKSHOP / "manifests"
NAMESPACE = "bookshop"  # as the manifests are written
ROLLOUT_TIMEOUT_S = 180


def documents(directory: Path = MANIFESTS) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yaml")):
        found += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def in_namespace(docs: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    """The sample moved to `namespace` (its Namespace renamed, annotations kept)."""
    moved = []
    for doc in docs:
        metadata = dict(doc["metadata"])
        if doc["kind"] == "Namespace":
            metadata["name"] = namespace
        else:
            metadata["namespace"] = namespace
        if doc["kind"] == "ServiceProfile":  # named after the Service's FQDN
            service = metadata["name"].split(f".{NAMESPACE}.svc.", 1)[0]
            metadata["name"] = f"{service}.{namespace}.svc.cluster.local"
        moved.append({**doc, "metadata": metadata})
    return moved


def deployments(docs: list[dict[str, Any]]) -> list[str]:
    return [doc["metadata"]["name"] for doc in docs if doc["kind"] == "Deployment"]


def deploy(info: ClusterInfo, namespace: str = NAMESPACE) -> list[str]:
    """Apply the sample and wait for every Deployment to roll out (its pods Ready,
    proxies included); returns the Deployments' names."""
    docs = in_namespace(documents(), namespace)
    local_install.kubectl(info, "apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
    names = deployments(docs)
    for name in names:
        rolled = local_install.kubectl_result(
            info, "rollout", "status", f"deployment/{name}", "-n", namespace,
            f"--timeout={ROLLOUT_TIMEOUT_S}s",
        )  # fmt: skip
        if rolled.returncode != 0:
            raise local_install.InstallError(
                f"deployment {namespace}/{name} did not roll out: {rolled.stderr.strip()}\n"
                f"{not_ready(info, namespace)}"
            )
    return names


def not_ready(info: ClusterInfo, namespace: str) -> str:
    """The pods of `namespace`, and the proxy's last log lines of each pod not Ready."""
    shown = [local_install.kubectl_result(info, "get", "pods", "-n", namespace).stdout]
    listed = local_install.kubectl_result(info, "get", "pods", "-n", namespace, "-o", "json")
    for pod in json.loads(listed.stdout or '{"items": []}')["items"]:
        conditions = pod.get("status", {}).get("conditions", [])
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            continue
        name = pod["metadata"]["name"]
        log = local_install.kubectl_result(
            info, "logs", "-n", namespace, name, "-c", mesh.PROXY_CONTAINER, "--tail=15"
        )
        shown.append(f"{name}, its proxy's log ends with:\n{log.stdout}{log.stderr}")
    return "\n".join(shown)
