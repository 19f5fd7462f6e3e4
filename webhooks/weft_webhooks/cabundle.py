"""JSON Patches that put the CA bundle where the API server reads it: each webhook of
the webhook configurations, and the conversion webhook of each converted CRD.

Each patch is empty when the bundle is already in place, so renewing is idempotent.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

Operation = dict[str, Any]


def encode(bundle_pem: bytes) -> str:
    """caBundle fields hold the PEM base64-encoded."""
    return base64.b64encode(bundle_pem).decode()


def webhook_configuration_patch(
    configuration: Mapping[str, Any], ca_bundle: str
) -> list[Operation]:
    operations: list[Operation] = []
    for position, webhook in enumerate(configuration.get("webhooks") or ()):
        if (webhook.get("clientConfig") or {}).get("caBundle") == ca_bundle:
            continue
        operations += [
            # The list may have changed since it was read: patch the webhook we read.
            {"op": "test", "path": f"/webhooks/{position}/name", "value": webhook["name"]},
            {
                "op": "add",
                "path": f"/webhooks/{position}/clientConfig/caBundle",
                "value": ca_bundle,
            },
        ]
    return operations


def crd_patch(crd: Mapping[str, Any], ca_bundle: str) -> list[Operation]:
    """Only a CRD the installer switched to webhook conversion is patched."""
    conversion = (crd.get("spec") or {}).get("conversion") or {}
    if conversion.get("strategy") != "Webhook":
        return []
    client_config = (conversion.get("webhook") or {}).get("clientConfig") or {}
    if client_config.get("caBundle") == ca_bundle:
        return []
    path = "/spec/conversion/webhook/clientConfig/caBundle"
    return [{"op": "add", "path": path, "value": ca_bundle}]
