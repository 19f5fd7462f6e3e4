"""A mesh identity written to files, as a user brings one (`step certificate create`,
an existing CA): made here with the operator's own CA code."""

from __future__ import annotations

import datetime
from pathlib import Path

from weft_api.mesh_ca import new_issuer, new_trust_anchor


def write_identity(folder: Path, anchor_domain: str = "cluster.local") -> dict[str, Path]:
    """anchors.pem, crt.pem and key.pem; with another `anchor_domain`, the anchors did
    not sign the issuer."""
    now = datetime.datetime.now(datetime.UTC)
    anchor = new_trust_anchor("cluster.local", now)
    issuer = new_issuer(anchor, "cluster.local", now)
    if anchor_domain != "cluster.local":  # an anchor that did not sign this issuer
        anchor = new_trust_anchor(anchor_domain, now)
    files = {"anchors": anchor.cert_pem(), "crt": issuer.cert_pem(), "key": issuer.key_pem()}
    paths = {}
    for name, pem in files.items():
        paths[name] = folder / f"{name}.pem"
        paths[name].write_bytes(pem)
    return paths


def identity_arguments(paths: dict[str, Path]) -> list[str]:
    """The same flags for `weft install` and `helm install`/`helm template`."""
    return [
        f"--set-file=identity.trustAnchorsPEM={paths['anchors']}",
        f"--set-file=identity.issuer.crt={paths['crt']}",
        f"--set-file=identity.issuer.key={paths['key']}",
    ]
