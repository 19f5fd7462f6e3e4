"""What `weft tap` and `weft top` watch: which proxies (a workload, a pod, a namespace)
and which requests (the filters each proxy applies before sending events)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from weft_api.identity import identity_name
from weft_api.proto import tap_pb2
from weft_cli.errors import CliError
from weft_cli.observe.pods import PodInfo
from weft_cli.observe.sources import scraped
from weft_cli.options import INBOUND, OUTBOUND

TARGET_KINDS = {
    "deploy": "deploy",
    "deployment": "deploy",
    "ro": "rollout",
    "rollout": "rollout",
    "rs": "rs",
    "replicaset": "rs",
    "po": "pod",
    "pod": "pod",
    "ns": "ns",
    "namespace": "ns",
}


@dataclass(frozen=True)
class Target:
    kind: str  # deploy, rollout, rs, pod, ns; "" for every meshed pod of the namespace
    name: str = ""


def parse_target(text: str | None) -> Target:
    if not text:
        return Target("")
    kind, slash, name = text.partition("/")
    if not slash or kind not in TARGET_KINDS or not name:
        raise CliError(f"{text!r} is not deploy/NAME, rollout/NAME, rs/NAME, pod/NAME or ns/NAME")
    return Target(TARGET_KINDS[kind], name)


def _workload_kind(kind: str) -> str:
    """A tap target's kind as `PodInfo.workload_kind` says it."""
    return {"deploy": "deployment", "rollout": "rollout"}.get(kind, "")


def targeted(pod: PodInfo, target: Target) -> bool:
    """Whether `pod` belongs to `target` (any pod for the namespace or no target)."""
    if target.kind in ("", "ns"):
        return True
    if target.kind == "pod":
        return pod.name == target.name
    if target.kind == "rs":
        return pod.replica_set == target.name
    return pod.workload_kind == _workload_kind(target.kind) and pod.workload == target.name


def select(pods: Sequence[PodInfo], target: Target) -> list[PodInfo]:
    """The running meshed pods to tap; an error when the target has none."""
    chosen = [pod for pod in pods if scraped(pod) and targeted(pod, target)]
    if not chosen:
        what = f"{target.kind}/{target.name}" if target.kind else "this namespace"
        raise CliError(f"no running meshed pods in {what}")
    return chosen


def _qualified(text: str, namespace: str) -> tuple[str, str]:
    """`name` or `ns/name` -> (ns, name)."""
    left, slash, right = text.partition("/")
    return (left, right) if slash else (namespace, left)


def observe_request(
    args: argparse.Namespace, namespace: str, limit: int = 0
) -> tap_pb2.ObserveRequest:
    direction = args.direction or ""
    destination = source_identity = ""
    if args.to:
        destination = "/".join(_qualified(args.to, namespace))
        direction = _only(direction, OUTBOUND, "--to")
    if args.from_:
        ns, account = _qualified(args.from_, namespace)
        source_identity = identity_name(account, ns, args.trust_domain)
        direction = _only(direction, INBOUND, "--from")
    return tap_pb2.ObserveRequest(
        direction=direction,
        authority=args.authority,
        path_prefix=args.path,
        method=args.method.upper(),
        source_identity=source_identity,
        destination=destination,
        limit=limit,
    )


def _only(chosen: str, wanted: str, option: str) -> str:
    if chosen and chosen != wanted:
        raise CliError(
            f"{option} watches {wanted} requests: it cannot go with --direction {chosen}"
        )
    return wanted
