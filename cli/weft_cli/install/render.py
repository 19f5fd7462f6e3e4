"""The whole install as one YAML stream, and what `weft uninstall` deletes: pure
functions of the values and the identity, so the same input gives the same bytes."""

from __future__ import annotations

from typing import Any

import yaml

from weft_api import mesh
from weft_api.mesh import ISSUER_SECRET, TRUST_ROOTS, TRUST_ROOTS_KEY
from weft_cli import manifests
from weft_cli.install.identity import MeshIdentity
from weft_cli.install.values import Values
from weft_webhooks.endpoints import CONVERTED_CRDS

OPERATOR_METRICS_PORT = 9990
WEBHOOKS_PORT = 9443
SEPARATOR = "---\n"
# Every CRD file says so: CRDs alone work without Weft's webhooks.
NO_CONVERSION = "  conversion:\n    strategy: None\n"

_PLACEHOLDER_IDENTITY = MeshIdentity("", "", "", generated=False)


def _header(identity: MeshIdentity) -> str:
    lines = [
        f"# Weft {mesh.PROXY_VERSION}, rendered by `weft install`: pipe it to `kubectl apply -f -`",
        "# or commit it to a GitOps repository.",
    ]
    if identity.generated:
        lines += [
            "# It holds the mesh issuer's private key, generated for this install: keep it",
            "# secret, and render it once (each run generates a new identity).",
        ]
    return "\n".join(lines) + "\n"


def crd_name(text: str) -> str:
    for document in yaml.safe_load_all(text):
        if document and document.get("kind") == "CustomResourceDefinition":
            name: str = document["metadata"]["name"]
            return name
    raise ValueError("no CustomResourceDefinition in a CRD file")


def _with_conversion(text: str, conversion: dict[str, Any]) -> str:
    if text.count(NO_CONVERSION) != 1:
        raise ValueError(f"{crd_name(text)}: expected one `conversion: strategy: None` block")
    block = yaml.safe_dump({"conversion": conversion}, sort_keys=False)
    indented = "".join(f"  {line}\n" for line in block.splitlines())
    return text.replace(NO_CONVERSION, indented)


def crds(namespace: str | None = None) -> list[str]:
    """The CRDs as shipped; with the control plane's `namespace`, the converted ones
    call the conversion webhook there (the webhooks patch in their caBundle)."""
    texts = [path.read_text() for path in manifests.crd_files()]
    if namespace is None:
        return texts
    conversion = manifests.crd_conversion_for_service(namespace)
    return [
        _with_conversion(text, conversion) if crd_name(text) in CONVERTED_CRDS else text
        for text in texts
    ]


def _context(namespace: str, values: Values, identity: MeshIdentity) -> dict[str, Any]:
    return {
        **values,
        "namespace": namespace,
        "ports": {
            "metrics": OPERATOR_METRICS_PORT,
            "config": mesh.CONFIG_PORT,
            "identity": mesh.IDENTITY_PORT,
            "webhooks": WEBHOOKS_PORT,
        },
        "services": {
            "config": mesh.CONFIG_SERVICE,
            "identity": mesh.IDENTITY_SERVICE,
            "webhooks": manifests.WEBHOOKS_SERVICE,
        },
        "trust_roots": {"name": TRUST_ROOTS, "key": TRUST_ROOTS_KEY},
        "issuer_secret": ISSUER_SECRET,
        "tap": {"service_account": mesh.TAP_CLIENT_SERVICE_ACCOUNT, "role": mesh.TAP_ROLE},
        "trust_anchors_pem": identity.trust_anchors_pem,
        "issuer_crt_pem": identity.issuer_crt_pem,
        "issuer_key_pem": identity.issuer_key_pem,
        "issuer_external": identity.external,
    }


def control_plane(namespace: str, values: Values, identity: MeshIdentity) -> list[str]:
    """Everything but the CRDs, in the order to apply it."""
    context = _context(namespace, values, identity)
    return [
        manifests.namespace_manifest(namespace),
        manifests.operator_rbac(namespace, with_namespace=False),
        manifests.webhooks_rbac(namespace, with_namespace=False),
        manifests.render("identity", **context),
        manifests.render("tap-rbac", **context),
        manifests.render("operator", **context),
        manifests.render("webhooks-server", **context),
        manifests.webhook_configurations_for_service(namespace),
    ]


def install(namespace: str, values: Values, identity: MeshIdentity) -> str:
    parts = [*crds(namespace), *control_plane(namespace, values, identity)]
    return _header(identity) + "".join(SEPARATOR + part for part in parts)


def crds_only() -> str:
    header = "# Weft's CRDs, rendered by `weft install --crds`: pipe it to `kubectl apply -f -`.\n"
    return header + "".join(SEPARATOR + part for part in crds())


def uninstall(namespace: str, values: Values, include_crds: bool) -> str:
    """What `install` creates, newest first (the webhook configurations go before the
    webhooks, so the API server never calls a deleted server), as references for
    `kubectl delete -f -`. Users' custom resources live in their namespaces and stay,
    unless the CRDs go: deleting a CRD deletes every resource of its kind."""
    parts = control_plane(namespace, values, _PLACEHOLDER_IDENTITY)
    if include_crds:
        parts = crds() + parts
    references = []
    for part in parts:
        for document in yaml.safe_load_all(part):
            if not document:
                continue
            metadata = {"name": document["metadata"]["name"]}
            if "namespace" in document["metadata"]:
                metadata["namespace"] = document["metadata"]["namespace"]
            references.append(
                {
                    "apiVersion": document["apiVersion"],
                    "kind": document["kind"],
                    "metadata": metadata,
                }
            )
    header = "# Rendered by `weft uninstall`: pipe it to `kubectl delete -f -`.\n"
    return header + "".join(
        SEPARATOR + yaml.safe_dump(reference, sort_keys=False) for reference in reversed(references)
    )
