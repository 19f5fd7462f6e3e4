"""Kubeconfig files for the admin and for each control-plane component."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from weft_api.pki import KeyPair

CONTEXT = "weft-local"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig(server: str, ca_pem: bytes, user: KeyPair | str) -> dict[str, Any]:
    """A self-contained kubeconfig (certificates inline) for a client cert or a token."""
    if isinstance(user, str):
        credentials = {"token": user}
    else:
        credentials = {
            "client-certificate-data": _b64(user.cert_pem()),
            "client-key-data": _b64(user.key_pem()),
        }
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CONTEXT,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)},
            }
        ],
        "users": [{"name": CONTEXT, "user": credentials}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT}}],
        "current-context": CONTEXT,
        "preferences": {},
    }


def write_kubeconfig(path: Path, server: str, ca_pem: bytes, user: KeyPair | str) -> Path:
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump(kubeconfig(server, ca_pem, user), sort_keys=False))
    return path
