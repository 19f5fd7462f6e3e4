"""`weft stat` and `weft tap` name Argo Rollouts and ReplicaSets as they name Deployments:
pure resolution over pod lists (the API's JSON), no cluster needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from weft_cli import stat_cmd
from weft_cli.errors import CliError
from weft_cli.main import build_parser
from weft_cli.observe import exposition, file_source
from weft_cli.observe.exposition import Sample
from weft_cli.observe.pods import PodInfo, from_api
from weft_cli.observe.stats import DEPLOYMENT, REPLICA_SET, ROLLOUT, workload_stats
from weft_cli.observe.tap_request import Target, parse_target, select
from weft_cli.observe.window import Window, from_scrapes

METRICS = Path(__file__).parent / "golden" / "metrics"


def api_pod(name: str, labels: dict[str, str], owner: tuple[str, str] | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "namespace": "shop",
        "name": name,
        "labels": labels,
        "annotations": {"weft.dev/proxy-version": "0.1.0"},
    }
    if owner is not None:
        kind, owner_name = owner
        metadata["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": kind, "name": owner_name, "controller": True}
        ]
    return {"metadata": metadata, "spec": {}, "status": {"phase": "Running", "podIP": "10.0.0.1"}}


def rollout_pod(name: str = "web-6f7c9b-x2k4p", template_hash: str = "6f7c9b") -> PodInfo:
    labels = {"app": "web", "rollouts-pod-template-hash": template_hash}
    return from_api(api_pod(name, labels, ("ReplicaSet", f"web-{template_hash}")))


def test_a_rollouts_pod_belongs_to_its_rollout_and_its_replica_set() -> None:
    pod = rollout_pod()
    assert (pod.workload_kind, pod.workload, pod.replica_set) == ("rollout", "web", "web-6f7c9b")


def test_a_deployments_pod_keeps_its_deployment_and_knows_its_replica_set() -> None:
    labels = {"pod-template-hash": "7d9f8"}
    pod = from_api(api_pod("books-7d9f8-abcde", labels, ("ReplicaSet", "books-7d9f8")))
    assert (pod.workload_kind, pod.workload, pod.replica_set) == (
        "deployment",
        "books",
        "books-7d9f8",
    )


def test_a_bare_replica_set_and_other_owners() -> None:
    bare = from_api(api_pod("cache-abcde", {}, ("ReplicaSet", "cache")))
    assert (bare.workload_kind, bare.workload, bare.replica_set) == (
        "replicaset",
        "cache",
        "cache",
    )
    sts = from_api(api_pod("db-0", {}, ("StatefulSet", "db")))
    assert (sts.workload_kind, sts.workload, sts.replica_set) == ("statefulset", "db", "")
    alone = from_api(api_pod("debug", {}, None))
    assert (alone.workload_kind, alone.workload, alone.replica_set) == ("", "", "")


def test_a_hash_that_does_not_end_the_replica_set_name_is_not_trusted() -> None:
    labels = {"rollouts-pod-template-hash": "zzz"}
    pod = from_api(api_pod("web-abc-1", labels, ("ReplicaSet", "web-abc")))
    assert (pod.workload_kind, pod.workload, pod.replica_set) == (
        "replicaset",
        "web-abc",
        "web-abc",
    )


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("rollout/web", Target("rollout", "web")),
        ("ro/web", Target("rollout", "web")),
        ("rs/web-6f7c9b", Target("rs", "web-6f7c9b")),
        ("replicaset/web-6f7c9b", Target("rs", "web-6f7c9b")),
        ("deploy/web", Target("deploy", "web")),
    ],
)
def test_tap_targets_name_rollouts_and_replica_sets(text: str, target: Target) -> None:
    assert parse_target(text) == target


def test_tap_refuses_other_kinds_and_says_which_it_takes() -> None:
    with pytest.raises(CliError, match="rollout/NAME, rs/NAME"):
        parse_target("sts/db")


def test_tap_selects_the_pods_of_a_rollout_or_one_of_its_replica_sets() -> None:
    stable = rollout_pod("web-6f7c9b-x2k4p", "6f7c9b")
    canary = rollout_pod("web-84d5f-q9w8e", "84d5f")
    labels = {"pod-template-hash": "6f7c9b"}
    namesake = from_api(api_pod("web-6f7c9b-d3pl0", labels, ("ReplicaSet", "web-6f7c9b")))
    pods = [stable, canary, namesake]
    assert select(pods, parse_target("rollout/web")) == [stable, canary]
    assert select(pods, parse_target("rs/web-84d5f")) == [canary]
    # A Deployment `web` and a Rollout `web` are different workloads.
    assert select(pods, parse_target("deploy/web")) == [namesake]
    with pytest.raises(CliError, match="no running meshed pods in rs/web-0000"):
        select(pods, parse_target("rs/web-0000"))


def test_stat_accepts_rollout_and_rs_and_counts_pods_under_them() -> None:
    assert stat_cmd.ALIASES["rollout"] == stat_cmd.ALIASES["ro"] == ROLLOUT
    assert stat_cmd.ALIASES["rs"] == stat_cmd.ALIASES["replicaset"] == REPLICA_SET
    pod = rollout_pod()
    assert stat_cmd.counted_under(ROLLOUT, pod) == "web"
    assert stat_cmd.counted_under(REPLICA_SET, pod) == "web-6f7c9b"
    assert stat_cmd.counted_under(DEPLOYMENT, pod) == ""


def read(name: str) -> list[Sample]:
    return exposition.parse((METRICS / f"{name}.txt").read_text())


def window_of(pod: PodInfo) -> Window:
    return from_scrapes(10.0, [(pod, read("web.before"), read("web.after"))])


def test_a_rollout_and_its_replica_set_show_the_traffic_its_pods_serve() -> None:
    """The same two reads of one proxy, as a Deployment's pod and as a Rollout's: the
    same figures, under the Rollout and under its ReplicaSet."""
    deployed = PodInfo("shop", "web-7d9f8-abcde", "deployment", "web", "web", "0.1.0")
    (as_deployment,) = workload_stats(DEPLOYMENT, [deployed], window_of(deployed))
    pod = rollout_pod()
    window = window_of(pod)
    (as_rollout,) = workload_stats(ROLLOUT, [pod], window)
    (as_replica_set,) = workload_stats(REPLICA_SET, [pod], window, name="web-6f7c9b")
    assert (as_rollout.name, as_rollout.meshed, as_rollout.pods) == ("web", 1, 1)
    assert as_replica_set.name == "web-6f7c9b"
    assert as_deployment.figures.requests > 0
    assert as_rollout.figures == as_replica_set.figures == as_deployment.figures
    assert workload_stats(DEPLOYMENT, [pod], window) == []
    assert workload_stats(REPLICA_SET, [pod], window, name="other") == []


def test_a_proxies_file_names_rollouts_and_replica_sets() -> None:
    text = """
proxies:
  - {namespace: shop, pod: web-6f7c9b-x2k4p, rollout: web, replicaset: web-6f7c9b,
     admin: "127.0.0.1:4191"}
"""
    (pod,) = file_source.parse_proxies(text, "proxies.yaml")
    assert (pod.workload_kind, pod.workload, pod.replica_set) == ("rollout", "web", "web-6f7c9b")


@pytest.mark.parametrize(
    ("argv", "kind", "name"),
    [
        (["rollout/web"], ROLLOUT, "web"),
        (["rs/web-6f7c9b"], REPLICA_SET, "web-6f7c9b"),
        (["rollout", "web"], ROLLOUT, None),
        (["deploy"], DEPLOYMENT, None),
    ],
)
def test_stat_takes_the_name_after_a_slash_as_linkerd_viz_does(
    argv: list[str], kind: str, name: str | None
) -> None:
    args = build_parser().parse_args(["stat", *argv])
    assert args.kind == (kind, name)


def test_stat_refuses_a_kind_it_does_not_know_and_names_those_it_does(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["stat", "sts/db"])
    assert "'sts/db' is not KIND or KIND/NAME" in capsys.readouterr().err
