"""Is the API server calling Weft's webhooks yet? Server-side dry runs in `default` tell.

Registering takes effect a moment after `kubectl apply` returns (the API server
watches webhook configurations and CRDs), so an installer waits for each webhook to
show it was called. Dry runs store nothing.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

from weft_api import mesh

Kubectl = Callable[..., subprocess.CompletedProcess[str]]  # (*args, stdin=...) -> result

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


def _dry_run(run: Kubectl, manifest: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    args = ("create", "-n", "default", "--dry-run=server", "-o", "json", "-f", "-")
    return run(*args, stdin=json.dumps(manifest))


def _injects(run: Kubectl) -> bool:
    created = _dry_run(run, _POD)
    return created.returncode == 0 and mesh.PROXY_CONTAINER in created.stdout


def _validates(run: Kubectl) -> bool:
    refused = _dry_run(run, _split(0, "v1alpha4"))  # weights adding up to 0
    return refused.returncode != 0 and "every weight is 0" in refused.stderr


def _converts(run: Kubectl) -> bool:
    # Through storage (v1alpha4) and back: only the webhook turns "1000m" into "1".
    created = _dry_run(run, _split("1000m", "v1alpha1"))
    if created.returncode != 0:
        return False
    return bool(json.loads(created.stdout)["spec"]["backends"][0]["weight"] == "1")


def wait_until_called(run: Kubectl, timeout: float) -> None:
    pending = {"injection": _injects, "validation": _validates, "conversion": _converts}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = {name: probe for name, probe in pending.items() if not probe(run)}
        if pending:
            time.sleep(0.25)
    if pending:
        raise TimeoutError(f"the API server does not call Weft's {', '.join(pending)} webhook")
