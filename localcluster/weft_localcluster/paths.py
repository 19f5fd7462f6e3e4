"""Where the local cluster keeps its cached binaries and its running state."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Cached builds live outside any checkout, so a fresh clone reuses them."""
    override = os.environ.get("WEFT_CACHE_DIR")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "weft"


def default_state_dir() -> Path:
    """State of the user's cluster: PKI, kubeconfig, etcd data, logs and pid files."""
    override = os.environ.get("WEFT_CLUSTER_DIR")
    if override:
        return Path(override)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "weft" / "cluster"
