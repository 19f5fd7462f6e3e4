"""From a pod (and its namespace's annotations) to the JSON Patch that injects it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from weft_api import mesh
from weft_api.workload import owning_workload, workload_labels
from weft_webhooks.injection.containers import render
from weft_webhooks.injection.decision import (
    SKIP_REASONS,
    Decision,
    Outcome,
    annotations_of,
    decide,
)
from weft_webhooks.injection.options import read_options
from weft_webhooks.injection.patch import (
    Operation,
    add_annotations,
    add_labels,
    append_volumes,
    insert_init_containers,
)
from weft_webhooks.injection.settings import InjectorSettings


@dataclass(frozen=True, slots=True)
class Injection:
    outcome: Outcome
    patch: tuple[Operation, ...]  # empty when the pod stays as it is
    warnings: tuple[str, ...]  # for the person who created the pod


def inject(
    pod: Mapping[str, Any], namespace_annotations: Mapping[str, str], settings: InjectorSettings
) -> Injection:
    decision = _checked_for_trust_anchors(decide(pod, namespace_annotations), settings)
    # A meshed pod names its workload in labels, for the scrape config. A pod injected
    # offline (`weft inject`) gets them here, when it is created from its template.
    # (The admission review puts the request's namespace in the pod's metadata.)
    metadata = pod.get("metadata") or {}
    labels = workload_labels(owning_workload(metadata), str(metadata.get("namespace") or ""))
    if decision.outcome is Outcome.ALREADY_INJECTED:
        return Injection(decision.outcome, tuple(add_labels(pod, labels)), decision.warnings)
    if decision.outcome in SKIP_REASONS:
        reason = {mesh.INJECT_SKIPPED_ANNOTATION: SKIP_REASONS[decision.outcome]}
        recorded = annotations_of(pod).items() >= reason.items()
        patch = () if recorded else tuple(add_annotations(pod, reason))
        return Injection(decision.outcome, patch, decision.warnings)
    if decision.outcome is not Outcome.INJECTED:
        return Injection(decision.outcome, (), decision.warnings)
    read = read_options(pod, namespace_annotations)
    injected = render(settings, read.options)
    record = {
        mesh.PROXY_VERSION_ANNOTATION: settings.version,
        mesh.INJECTED_CONTAINERS_ANNOTATION: ",".join(c["name"] for c in injected.init_containers),
    }
    patch = (
        *add_annotations(pod, record),
        *add_labels(pod, labels),
        *insert_init_containers(pod, injected.init_containers),
        *append_volumes(pod, injected.volumes),
    )
    return Injection(Outcome.INJECTED, patch, decision.warnings + read.warnings)


def _checked_for_trust_anchors(decision: Decision, settings: InjectorSettings) -> Decision:
    """Injection fails open (the webhook's failurePolicy is Ignore: a stalled rollout is
    worse than an unmeshed pod), so missing trust anchors are no refusal. But a proxy
    without them would look meshed while it has no identity and reaches no meshed peer
    (mTLS only): a silent downgrade. The pod stays visibly unmeshed instead, with the
    reason on it and a warning, and is meshed when recreated after the anchors exist."""
    missing = settings.require_trust_anchors and not settings.trust_anchors_pem
    if decision.outcome is not Outcome.INJECTED or not missing:
        return decision
    warning = f"weft: not injected: {SKIP_REASONS[Outcome.NO_TRUST_ANCHORS]}"
    return Decision(Outcome.NO_TRUST_ANCHORS, (*decision.warnings, warning))
