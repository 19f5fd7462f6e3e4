"""The reconciler: watch events in, status writes and Warning Events out (no API server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from weft_operator.reconciler import Reconciler, StatusWrite, WarningEvent
from weft_resources.base import Kind
from weft_resources.kinds import BY_KIND
from weft_resources.split import TrafficSplit

SPLIT = BY_KIND[Kind.TRAFFIC_SPLIT]
SERVICE = BY_KIND[Kind.SERVICE]
CRDS = Path(__file__).parents[2] / "crds"


def split_body(weight: Any = 100, generation: int = 1, status: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "split.smi-spec.io/v1alpha4",
        "kind": "TrafficSplit",
        "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "generation": generation},
        "spec": {"service": "web", "backends": [{"service": "web-v2", "weight": weight}]},
    }
    if status:
        body["status"] = status
    return body


def service_body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "shop", "uid": name},
        "spec": {"ports": [{"port": 80}], "selector": {"app": name}},
    }


def conditions(action: StatusWrite) -> dict[str, str]:
    return {c["type"]: c["status"] for c in action.status["conditions"]}


def test_missing_backend_is_reported_once_and_recovers_when_it_appears() -> None:
    reconciler = Reconciler()
    reconciler.observe(SERVICE, "ADDED", service_body("web"))
    first = reconciler.observe(SPLIT, "ADDED", split_body())
    write, event = first
    assert isinstance(write, StatusWrite)
    assert isinstance(event, WarningEvent)
    assert conditions(write)["ResolvedRefs"] == "False"
    assert event.reason == "RefNotFound"
    assert "Service shop/web-v2 (spec.backends[0].service)" in event.message

    # Our own status patch comes back as a MODIFIED event: nothing more to do.
    echoed = split_body(status=write.status)
    assert reconciler.observe(SPLIT, "MODIFIED", echoed) == []

    (recovered,) = reconciler.observe(SERVICE, "ADDED", service_body("web-v2"))
    assert isinstance(recovered, StatusWrite)
    assert recovered.ref.name == "web"
    assert conditions(recovered)["Ready"] == "True"

    lost = reconciler.observe(SERVICE, "DELETED", service_body("web-v2"))
    assert [type(a) for a in lost] == [StatusWrite, WarningEvent]


def test_an_invalid_update_keeps_the_last_valid_split_in_the_index() -> None:
    reconciler = Reconciler()
    reconciler.observe(SPLIT, "ADDED", split_body(weight=100))
    actions = reconciler.observe(SPLIT, "MODIFIED", split_body(weight="lots", generation=2))
    write = next(a for a in actions if isinstance(a, StatusWrite))
    accepted = next(c for c in write.status["conditions"] if c["type"] == "Accepted")
    assert accepted["status"] == "False"
    assert "spec.backends[0].weight" in accepted["message"]
    assert write.status["observedGeneration"] == 2
    kept = reconciler.index.get(TrafficSplit, "shop", "web")
    assert kept is not None
    assert [b.weight for b in kept.spec.backends] == [100]


def test_a_deleted_split_leaves_the_index_and_writes_nothing() -> None:
    reconciler = Reconciler()
    reconciler.observe(SPLIT, "ADDED", split_body())
    assert reconciler.observe(SPLIT, "DELETED", split_body()) == []
    assert reconciler.index.get(TrafficSplit, "shop", "web") is None


def test_a_restart_does_not_repeat_an_event_already_reported_in_status() -> None:
    before = Reconciler()
    write = before.observe(SPLIT, "ADDED", split_body())[0]
    assert isinstance(write, StatusWrite)
    after_restart = Reconciler()
    assert after_restart.observe(SPLIT, None, split_body(status=write.status)) == []


def test_listeners_hear_index_changes_with_revisions_and_generations() -> None:
    from weft_operator.conditions import Convergence
    from weft_operator.reconciler import Change

    reconciler = Reconciler()
    heard: list[Change] = []
    reconciler.add_listener(heard.append)
    reconciler.observe(SERVICE, "ADDED", service_body("web-v2"))
    reconciler.observe(SPLIT, "ADDED", split_body())
    reconciler.observe(SPLIT, "MODIFIED", split_body(weight="lots", generation=2))
    reconciler.observe(SERVICE, "DELETED", service_body("web-v2"))
    assert [(c.key.name, c.revision, c.index_changed, c.deleted) for c in heard] == [
        ("web-v2", 1, True, False),
        ("web", 2, True, False),
        ("web", 2, False, False),  # invalid: the index keeps generation 1's content
        ("web-v2", 3, True, True),
    ]
    assert [(c.generation, c.content_revision) for c in heard[1:3]] == [(1, 2), (2, 2)]

    split_key = heard[1].key
    (write,) = reconciler.report_convergence(split_key, Convergence(2, 0, 0))
    assert isinstance(write, StatusWrite)
    assert conditions(write)["Programmed"] == "False"  # generation 2 is invalid
    assert reconciler.report_convergence(split_key, Convergence(2, 0, 0)) == []


def crd_message_limit() -> int:
    """What the API server enforces on a condition message of a TrafficSplit."""
    crd = yaml.safe_load((CRDS / "split.smi-spec.io_trafficsplits.yaml").read_text())
    schemas = [version["schema"]["openAPIV3Schema"] for version in crd["spec"]["versions"]]
    limits = {
        schema["properties"]["status"]["properties"]["conditions"]["items"]["properties"][
            "message"
        ]["maxLength"]
        for schema in schemas
    }
    (limit,) = limits
    return int(limit)


def test_a_split_with_hundreds_of_missing_backends_gets_a_status_the_api_server_takes() -> None:
    names = [
        f"web-canary-{i:03d}-with-the-longest-name-a-service-may-have-xx"[:63] for i in range(422)
    ]
    body = split_body()
    body["spec"]["backends"] = [{"service": name, "weight": 1} for name in names]
    reconciler = Reconciler()
    reconciler.observe(SERVICE, "ADDED", service_body("web"))
    write, event = reconciler.observe(SPLIT, "ADDED", body)
    assert isinstance(write, StatusWrite)
    assert isinstance(event, WarningEvent)
    by_type = {c["type"]: c for c in write.status["conditions"]}
    message = by_type["ResolvedRefs"]["message"]
    assert max(len(c["message"]) for c in by_type.values()) <= crd_message_limit()
    assert len(json.dumps({"status": write.status})) < 8 * 1024
    assert message.startswith(f"references not found: Service shop/{names[0]} (spec.backends[0]")
    shown = message.count("Service shop/")
    assert shown >= 5  # as many as fit in a message a person reads
    assert message.endswith(f", and {422 - shown} more")
    assert event.message == by_type["Ready"]["message"] == message

    # The operator restarts: the status it wrote says it all, so no second Event.
    restarted = Reconciler()
    restarted.observe(SERVICE, "ADDED", service_body("web"))
    assert restarted.observe(SPLIT, None, {**body, "status": write.status}) == []


def test_an_http_route_stored_with_fields_weft_refuses_is_reported_in_status() -> None:
    """Stored while the validating webhook was away (or before it was installed)."""
    route = {
        "apiVersion": "policy.linkerd.io/v1beta3",
        "kind": "HTTPRoute",
        "metadata": {"name": "books", "namespace": "shop", "uid": "r1", "generation": 1},
        "spec": {
            "parentRefs": [{"kind": "Service", "group": "core", "name": "books"}],
            "hostnames": ["books.example.com"],
        },
    }
    actions = Reconciler().observe(BY_KIND[Kind.HTTP_ROUTE], "ADDED", route)
    write = next(a for a in actions if isinstance(a, StatusWrite))
    accepted = next(c for c in write.status["conditions"] if c["type"] == "Accepted")
    assert accepted["status"] == "False"
    assert "spec.hostnames: Weft does not match routes on hostnames" in accepted["message"]
