"""What an installed Weft injects, read from the cluster: for `weft inject --manual`,
so that its output is the pod the cluster's webhook would produce.

- the trust anchors: the ConfigMap the operator publishes (required: without them an
  injected proxy gets no identity);
- image, version, domains: the injection options on the webhook Deployment's command
  line, parsed with the webhook's own parser (absent when the webhooks run outside the
  cluster, as `weft demo` runs them: then the defaults apply);
- the `config.weft.dev/*` annotations of each workload's namespace.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from weft_api.mesh import TRUST_ROOTS, TRUST_ROOTS_KEY
from weft_cli.errors import CliError
from weft_cli.kube import Kube
from weft_webhooks.injection.arguments import add_injector_arguments, injector_settings
from weft_webhooks.injection.settings import InjectorSettings

WEBHOOKS_DEPLOYMENT = "weft-webhooks"  # cli/weft_cli/templates/webhooks-server.yaml.j2
WEBHOOKS_CONTAINER = "webhooks"


@dataclass(frozen=True)
class Installed:
    settings: InjectorSettings
    namespace_annotations: dict[str, dict[str, str]]  # by namespace; {} for a missing one


def settings_from_args(container_args: Iterable[str], weft_namespace: str) -> InjectorSettings:
    """The injection options of a webhook container's arguments (the rest ignored)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_injector_arguments(parser)
    parser.set_defaults(control_plane_namespace=weft_namespace)
    known, _ = parser.parse_known_args(list(container_args))
    return injector_settings(known)


def _webhook_args(deployment: dict[str, Any] | None) -> list[str]:
    spec = ((deployment or {}).get("spec") or {}).get("template", {}).get("spec") or {}
    for container in spec.get("containers") or ():
        if container.get("name") == WEBHOOKS_CONTAINER:
            return [str(arg) for arg in (container.get("args") or ())]
    return []


async def read_installed(kube: Kube, weft_namespace: str, namespaces: Iterable[str]) -> Installed:
    base = f"/api/v1/namespaces/{weft_namespace}"
    roots = await kube.get_or_none(f"{base}/configmaps/{TRUST_ROOTS}")
    anchors = ((roots or {}).get("data") or {}).get(TRUST_ROOTS_KEY, "").strip()
    if not anchors:
        raise CliError(
            f"no trust anchors in namespace {weft_namespace} (ConfigMap {TRUST_ROOTS}): is "
            "Weft installed there? Name its namespace with --weft-namespace, or pass "
            "--ignore-cluster with --trust-anchors-file"
        )
    deployment = await kube.get_or_none(
        f"/apis/apps/v1/namespaces/{weft_namespace}/deployments/{WEBHOOKS_DEPLOYMENT}"
    )
    settings = settings_from_args(_webhook_args(deployment), weft_namespace)
    annotations: dict[str, dict[str, str]] = {}
    for namespace in sorted(set(namespaces)):
        found = await kube.get_or_none(f"/api/v1/namespaces/{namespace}")
        annotations[namespace] = dict(
            ((found or {}).get("metadata") or {}).get("annotations") or {}
        )
    return Installed(replace(settings, trust_anchors_pem=anchors + "\n"), annotations)
