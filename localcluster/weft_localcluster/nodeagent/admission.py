"""Pods the node agent refuses outright, as a kubelet's admission rejects them (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def admission_failure(pod: Mapping[str, Any]) -> tuple[str, str] | None:
    """(reason, message) when the pod cannot run on this node at all."""
    spec = pod.get("spec") or {}
    shared = [key for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key)]
    if shared:
        return (
            "UnsupportedPod",
            f"the local node agent runs every pod in a network namespace of its own: "
            f"{', '.join(shared)} is not supported",
        )
    return None
