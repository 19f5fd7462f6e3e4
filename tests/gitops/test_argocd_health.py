"""The Argo CD health check shipped in docs/gitops/argocd-health, run in a real Lua VM
over the status the operator's own code writes (conditions.status_patch), and the
argocd-cm snippet that installs it for every Weft kind."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from argocd_health import SCRIPT, SNIPPET, health

from weft_operator.conditions import Convergence, Verdict, status_patch

CRDS = Path(__file__).resolve().parents[2] / "crds"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def split(generation: int, verdict: Verdict | None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "split.smi-spec.io/v1alpha4",
        "kind": "TrafficSplit",
        "metadata": {"name": "web", "namespace": "shop", "generation": generation},
        "spec": {"service": "web", "backends": [{"service": "web-v1", "weight": 1}]},
    }
    if verdict is not None:
        obj["status"] = status_patch(verdict, None, NOW)
    return obj


def test_the_snippet_installs_the_script_for_every_weft_kind() -> None:
    snippet = yaml.safe_load(SNIPPET.read_text())
    assert (snippet["kind"], snippet["metadata"]["name"]) == ("ConfigMap", "argocd-cm")
    kinds = set()
    for crd in CRDS.glob("*.yaml"):
        spec = yaml.safe_load(crd.read_text())["spec"]
        kinds.add(f"resource.customizations.health.{spec['group']}_{spec['names']['kind']}")
    assert len(kinds) == 13
    assert set(snippet["data"]) == kinds
    assert all(script == SCRIPT.read_text() for script in snippet["data"].values())


@pytest.mark.parametrize(
    ("verdict", "status", "message"),
    [
        (Verdict(3), "Healthy", "accepted and all references resolved"),
        (Verdict(3, missing=("Service shop/web-v2",)), "Progressing", "Service shop/web-v2"),
        (Verdict(3, invalid="spec.backends[0].weight: -1"), "Degraded", "weight: -1"),
        (Verdict(3, convergence=Convergence(3, 1, 2)), "Progressing", "1/2 proxies"),
        (Verdict(3, convergence=Convergence(2, 2, 2)), "Progressing", "generation 3"),
        (Verdict(3, convergence=Convergence(3, 2, 2)), "Healthy", "accepted"),
    ],
)
def test_health_follows_the_conditions_the_operator_writes(
    verdict: Verdict, status: str, message: str
) -> None:
    found = health(split(3, verdict))
    assert found.status == status
    assert message in found.message


def test_an_object_the_operator_has_not_seen_is_progressing() -> None:
    assert health(split(1, None)).status == "Progressing"
    stale = split(4, Verdict(3))  # edited since the operator last wrote its status
    found = health(stale)
    assert (found.status, found.message) == (
        "Progressing",
        "Waiting for the Weft operator to observe generation 4",
    )
