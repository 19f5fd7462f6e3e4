"""What every pod worker shares: the API, the image table, the network, the settings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weft_localcluster.nodeagent.addressing import AddressPool, NodeNetwork
from weft_localcluster.nodeagent.images import ImageTable
from weft_localcluster.nodeagent.kube import Kube


@dataclass
class AgentContext:
    kube: Kube
    images: ImageTable
    network: NodeNetwork
    pool: AddressPool
    service_cidr: str
    allocatable: Mapping[str, str]
    logs_dir: Path  # pods' logs, in the cluster's state folder
    hosts_for: Callable[[Mapping[str, Any], str], str]  # (pod, pod IP) -> hosts file
    service_rules: Callable[[], list[str]] = list  # WEFT-SERVICES' rules (service_nat.py)
    crash_backoff: float = 10.0  # the first crash-loop delay; doubles up to 5 minutes
