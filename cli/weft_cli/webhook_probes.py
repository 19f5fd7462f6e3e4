"""Is the API server calling Weft's webhooks? Server-side dry runs in `default` tell.

Registering takes effect a moment after `kubectl apply` returns (the API server
watches webhook configurations and CRDs), so an installer waits for each webhook to
show it was called; `weft check` asks the same questions once. Dry runs store nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from weft_api import mesh

PROBE_NAMESPACE = "default"


class Completed(Protocol):
    """What a kubectl run returns (subprocess.CompletedProcess)."""

    returncode: int
    stdout: str
    stderr: str


Kubectl = Callable[..., Completed]  # (*args, stdin=...) -> result


@dataclass(frozen=True)
class DryRun:
    """What the API server answered a dry-run create: the object it would store, or
    why it refused."""

    created: dict[str, Any] | None
    refusal: str = ""


@dataclass(frozen=True)
class Probe:
    webhook: str  # injection, validation, conversion
    manifest: dict[str, Any]
    plural: str  # of the manifest's kind, for the API path
    called: Callable[[DryRun], bool]

    @property
    def collection_path(self) -> str:
        """The API path a dry-run create posts to."""
        api_version = self.manifest["apiVersion"]
        prefix = "/api" if "/" not in api_version else "/apis"
        return f"{prefix}/{api_version}/namespaces/{PROBE_NAMESPACE}/{self.plural}"


_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "weft-injection-probe",
        "annotations": {mesh.INJECT_ANNOTATION: mesh.INJECT_ENABLED},
    },
    "spec": {"containers": [{"name": "probe", "image": "weft.dev/probe"}]},
}


def _split(weight: Any, version: str) -> dict[str, Any]:
    backends = [{"service": "weft-probe-backend", "weight": weight}]
    return {
        "apiVersion": f"split.smi-spec.io/{version}",
        "kind": "TrafficSplit",
        "metadata": {"name": "weft-webhook-probe"},
        "spec": {"service": "weft-probe", "backends": backends},
    }


def _injected(outcome: DryRun) -> bool:
    return outcome.created is not None and mesh.PROXY_CONTAINER in json.dumps(outcome.created)


def _refused_as_invalid(outcome: DryRun) -> bool:
    return outcome.created is None and "every weight is 0" in outcome.refusal


def _converted(outcome: DryRun) -> bool:
    # Through storage (v1alpha4) and back: only the webhook turns "1000m" into "1".
    if outcome.created is None:
        return False
    return bool(outcome.created["spec"]["backends"][0]["weight"] == "1")


PROBES = (
    Probe("injection", _POD, "pods", _injected),
    Probe("validation", _split(0, "v1alpha4"), "trafficsplits", _refused_as_invalid),
    Probe("conversion", _split("1000m", "v1alpha1"), "trafficsplits", _converted),
)


def kubectl_dry_run(run: Kubectl, manifest: dict[str, Any]) -> DryRun:
    args = ("create", "-n", PROBE_NAMESPACE, "--dry-run=server", "-o", "json", "-f", "-")
    result = run(*args, stdin=json.dumps(manifest))
    if result.returncode != 0:
        return DryRun(None, result.stderr)
    return DryRun(json.loads(result.stdout))


def wait_until_called(run: Kubectl, timeout: float) -> None:
    pending = list(PROBES)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = [p for p in pending if not p.called(kubectl_dry_run(run, p.manifest))]
        if pending:
            time.sleep(0.25)
    if pending:
        names = ", ".join(probe.webhook for probe in pending)
        raise TimeoutError(f"the API server does not call Weft's {names} webhook")
