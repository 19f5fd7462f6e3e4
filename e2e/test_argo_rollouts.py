"""Real Argo Rollouts drives canaries through Weft: the v1.10.1 controller, built from
Go modules (once, cached: weft_localcluster.rollouts_build), its CRDs read from its
module's source, with Argo's default SMI setup, `trafficRouting.smi: {}`. Without a
`rootService` Argo writes a TrafficSplit whose root is the stable Service and which
lists that Service again as a backend, next to the canary: Weft accepts it, as
linkerd-smi does (the root's share goes to the root Service's own endpoints, which
Argo keeps on the stable ReplicaSet). A canary is stepped through its weights, the
traffic of a meshed client following them, and promoted; another is aborted, traffic
back on stable. `weft stat` and `weft tap` name the Rollout and its ReplicaSets.

The controller runs on the host, as a process with the test cluster's kubeconfig
(`--namespaced`, watching only this module's namespace), not as a pod: the local
cluster's node agent runs processes from its image table
(weft_localcluster/nodeagent/images.py), not container images, and Argo's is not in
it. The controller talks only to the API server, so where it runs changes nothing it
does.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from host_process import host_process
from meshed_bookshop import AccessNamespace, ControlPlane, kubectl, relay_pod

from weft_api import mesh
from weft_api.identity import identity_name
from weft_localcluster import ports, rollouts_build
from weft_localcluster.waiting import eventually

T = TypeVar("T")
NAMESPACE = "rollouts-e2e"
CLIENT = "client"  # a meshed pod running relay.py: the canary's user
PORT = 8080  # relay.py's; /who answers the revision (WHO)
BANNER_PORT = 7001  # relay.py's other port
SAMPLE = 100  # requests per measured weight
ROLLOUT_S = 180.0  # a revision's pods scheduled, injected and ready on a loaded machine
# A step's pause with a duration: it must elapse by itself. The measured steps pause
# without one, and the test promotes them as `kubectl argo rollouts promote` does, so a
# slow measurement never races the controller.
TIMED_PAUSE = "5s"
WEFT_S = 120.0  # the `weft` commands, started together, on a loaded machine


@dataclass
class Controller:
    process: subprocess.Popen[bytes]
    log: Path

    def report(self, lines: int = 20) -> str:
        """Its last errors and last lines, for a failure's message."""
        logged = self.log.read_text(errors="replace").splitlines()
        errors = [line for line in logged if "level=error" in line][-5:]
        return "\n".join(
            ["controller errors (last 5):", *errors, "controller log (tail):", *logged[-lines:]]
        )


@pytest.fixture(scope="module")
def rollouts_crds(control_plane: ControlPlane) -> Iterator[list[Path]]:
    files = rollouts_build.crd_files()
    assert files, "no CRDs under the Argo Rollouts module's manifests/crds"
    cluster = control_plane.cluster
    paths = [arg for file in files for arg in ("-f", str(file))]
    kubectl(cluster, "apply", "--server-side", *paths)
    kubectl(cluster, "wait", "--for=condition=Established", *paths, "--timeout=60s")
    yield files
    kubectl(cluster, "delete", *paths, "--wait=false", "--ignore-not-found")


@pytest.fixture(scope="module")
def shop(control_plane: ControlPlane, rollouts_crds: list[Path]) -> Iterator[AccessNamespace]:
    """The meshed namespace of the Rollouts, with the client pod."""
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "annotations": {mesh.INJECT_ANNOTATION: "enabled"}},
    }
    kubectl(control_plane.cluster, "apply", "-f", "-", stdin=json.dumps(namespace))
    found = AccessNamespace(control_plane, NAMESPACE)
    found.apply(*relay_pod(CLIENT))
    found.kubectl("rollout", "status", f"deployment/{CLIENT}", f"--timeout={ROLLOUT_S:.0f}s")
    yield found
    kubectl(control_plane.cluster, "delete", "namespace", NAMESPACE, "--wait=false")


@pytest.fixture(scope="module")
def controller(
    shop: AccessNamespace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Controller]:
    binary = rollouts_build.ensure_rollouts()
    log = tmp_path_factory.mktemp("argo-rollouts") / "controller.log"
    cluster = shop.cluster
    command = [
        str(binary),
        f"--kubeconfig={cluster.kubeconfig}",
        "--namespaced",
        f"--namespace={NAMESPACE}",
        "--leader-elect=false",  # one controller; no Lease to wait for
        # Its defaults (8090, 8080) may be taken on the host.
        f"--metricsPort={ports.pick_free()}",
        f"--healthzPort={ports.pick_free()}",
    ]
    with host_process(command, log) as process:
        yield Controller(process, log)


class Canary:
    """One Rollout, `name`, with its stable and canary Services; revisions are told
    apart by what their pods answer on /who."""

    def __init__(self, shop: AccessNamespace, controller: Controller, name: str) -> None:
        self.shop = shop
        self.controller = controller
        self.name = name
        self.stable = f"{name}-stable"
        self.canary = f"{name}-canary"
        self.client = shop.pod_ip(CLIENT)  # read once: a lookup per call would be slow

    def deploy(self, who: str, steps: list[dict[str, Any]], root: str | None = None) -> None:
        smi: dict[str, Any] = {} if root is None else {"rootService": root}
        services = [self.service(self.stable), self.service(self.canary)]
        if root is not None:
            services.append(self.service(root))
        labels = {"app": self.name}
        rollout = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": self.name},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": self.template(who),
                "strategy": {
                    "canary": {
                        "canaryService": self.canary,
                        "stableService": self.stable,
                        "trafficRouting": {"smi": smi},
                        "steps": steps,
                    }
                },
            },
        }
        self.shop.apply(
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": self.name}}
        )
        self.shop.apply(*services, rollout)

    def service(self, name: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name},
            "spec": {"selector": {"app": self.name}, "ports": [{"port": PORT, "targetPort": PORT}]},
        }

    def template(self, who: str) -> dict[str, Any]:
        container = {
            "name": "app",
            "image": "python",
            "command": ["python", str(Path(__file__).parent / "relay.py")],
            "env": [{"name": "WHO", "value": who}],
            "ports": [{"name": "http", "containerPort": PORT}],
            # On relay.py's banner port: an HTTP probe would count in the request
            # metrics `weft stat` is checked against.
            "readinessProbe": {"tcpSocket": {"port": BANNER_PORT}, "periodSeconds": 2},
        }
        return {
            "metadata": {"labels": {"app": self.name}},
            "spec": {
                "serviceAccountName": self.name,
                "terminationGracePeriodSeconds": 5,
                "containers": [container],
            },
        }

    def release(self, who: str) -> None:
        """A new revision: the pod template changes, and Argo starts a canary."""
        patch = {
            "spec": {
                "template": {"spec": {"containers": [self.template(who)["spec"]["containers"][0]]}}
            }
        }
        self.shop.kubectl("patch", "rollout", self.name, "--type=merge", "-p", json.dumps(patch))

    def patch_status(self, status: dict[str, Any]) -> None:
        """As the kubectl-argo-rollouts plugin does (it patches the status subresource)."""
        self.shop.kubectl(
            "patch", "rollout", self.name, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": status}),
        )  # fmt: skip

    def promote(self) -> None:
        """`kubectl argo rollouts promote`, out of a pause step: its pause condition cleared."""
        self.patch_status({"pauseConditions": None})

    def abort(self) -> None:
        """`kubectl argo rollouts abort`."""
        self.patch_status({"abort": True})

    async def read(self, kind: str, name: str) -> dict[str, Any] | None:
        found = await asyncio.to_thread(
            self.shop.kubectl, "get", kind, name, "--ignore-not-found", "-o", "json"
        )
        return json.loads(found) if found.strip() else None

    async def rollout(self) -> dict[str, Any]:
        found = await self.read("rollouts.argoproj.io", self.name)
        assert found is not None, f"Rollout {self.name} is gone"
        return found

    async def split(self) -> dict[str, Any] | None:
        """The TrafficSplit Argo wrote (named after the Rollout), as Argo reads it."""
        return await self.read("trafficsplits.v1alpha1.split.smi-spec.io", self.name)

    async def who(
        self, http: aiohttp.ClientSession, count: int, service: str
    ) -> collections.Counter[str]:
        """Which revision answered each of `count` calls of the client to `service`."""
        url = f"http://{service}.{NAMESPACE}.svc.cluster.local:{PORT}/who"
        seen: collections.Counter[str] = collections.Counter()
        for _ in range(count):
            async with http.get(f"http://{self.client}:{PORT}/http", params={"url": url}) as r:
                assert r.status == 200, await r.text()
                answer = await r.json()
            seen[answer["body"] if answer["status"] == 200 else f"status {answer['status']}"] += 1
        return seen

    async def until(self, probe: Callable[[], Awaitable[T | None]], what: str, within: float) -> T:
        """`eventually`, failing with what the controller said meanwhile (a refused
        TrafficSplit shows there as reconcile errors, the canary never scaled up)."""
        try:
            return await eventually(probe, what, within)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.controller.report()}") from None


def weights(split: dict[str, Any] | None) -> dict[str, int]:
    if split is None:
        return {}
    return {b["service"]: int(b["weight"]) for b in split["spec"].get("backends", [])}


def condition(found: dict[str, Any], kind: str) -> bool:
    """Weft's condition `kind` is True for this generation of the object."""
    generation = found["metadata"].get("generation")
    return any(
        c.get("type") == kind
        and c.get("status") == "True"
        and c.get("observedGeneration") == generation
        for c in found.get("status", {}).get("conditions", [])
    )


class Steps:
    """Waits on what Argo and Weft report, one revision of one Canary at a time."""

    def __init__(self, canary: Canary, http: aiohttp.ClientSession, service: str) -> None:
        self.canary = canary
        self.http = http
        self.service = service  # what the client calls: the root of the split

    async def healthy(self, who: str) -> dict[str, Any]:
        """The Rollout Healthy with its current revision stable, serving all traffic."""

        async def promoted() -> dict[str, Any] | None:
            found = await self.canary.rollout()
            status = found.get("status", {})
            done = (
                status.get("phase") == "Healthy"
                and status.get("currentPodHash")
                and status.get("stableRS") == status.get("currentPodHash")
                and status.get("observedGeneration") == str(found["metadata"]["generation"])
            )
            return found if done else None

        found = await self.canary.until(promoted, f"Rollout {self.canary.name} Healthy", ROLLOUT_S)
        await eventually(lambda: self.only(who), f"all traffic on {who}", 60)
        return found

    async def only(self, who: str) -> bool:
        return await self.canary.who(self.http, 10, self.service) == {who: 10}

    async def at_weight(self, weight: int, step: int) -> dict[str, Any]:
        """The canary's ReplicaSet up, Argo's split at `weight`, accepted and run by
        every proxy (Weft's Ready and Programmed), the Rollout paused at step `step`."""
        canary = self.canary

        async def replica_set_ready() -> dict[str, Any] | None:
            status = (await canary.rollout()).get("status", {})
            pod_hash = status.get("currentPodHash")
            if not pod_hash or pod_hash == status.get("stableRS"):
                return None
            found = await canary.read("replicaset", f"{canary.name}-{pod_hash}")
            ready = found is not None and found.get("status", {}).get("readyReplicas", 0) >= 1
            return found if ready else None

        what = f"the canary ReplicaSet of {canary.name} to be ready"
        replica_set = await canary.until(replica_set_ready, what, ROLLOUT_S)
        wanted = {canary.canary: weight, canary.stable: 100 - weight}

        async def split_programmed() -> dict[str, Any] | None:
            found = await canary.split()
            if found is None or weights(found) != wanted:
                return None
            return found if condition(found, "Ready") and condition(found, "Programmed") else None

        what = f"Argo's TrafficSplit at {wanted}, Ready and Programmed"
        await canary.until(split_programmed, what, 90)

        async def paused() -> bool:
            status = (await canary.rollout()).get("status", {})
            return bool(status.get("pauseConditions")) and status.get("currentStepIndex") == step

        await canary.until(paused, f"Rollout {canary.name} paused at step {step}", 60)
        return replica_set

    async def follows(self, new: str, old: str, weight: int) -> None:
        """The client's calls split between the revisions as the weight says (roughly:
        a sample of SAMPLE calls, not a statistics test)."""
        await eventually(lambda: self.reaches(new), f"the client to reach the canary {new}", 60)
        seen = await self.canary.who(self.http, SAMPLE, self.service)
        assert set(seen) <= {new, old}, seen
        share = seen[new] / SAMPLE
        assert abs(share - weight / 100) <= 0.17, (weight, seen)

    async def reaches(self, who: str) -> bool:
        return (await self.canary.who(self.http, 20, self.service))[who] > 0


async def run_weft_while_calling(
    steps: Steps, commands: list[list[str]]
) -> list[tuple[int, str, str]]:
    """Run the `weft` commands (as a user does: subprocesses reading the proxies through
    the API server) while the client keeps calling; their exit codes and output."""
    env = {**os.environ, "KUBECONFIG": str(steps.canary.shop.cluster.kubeconfig)}
    started = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "weft_cli",
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for args in commands
    ]
    finished = asyncio.gather(*(process.communicate() for process in started))
    deadline = asyncio.get_running_loop().time() + WEFT_S
    while not finished.done() and asyncio.get_running_loop().time() < deadline:
        await steps.canary.who(steps.http, 5, steps.service)
    if not finished.done():  # a hung command fails the test, not the session
        for process in started:
            if process.returncode is None:
                process.kill()
    outputs = await finished
    return [
        (process.returncode or 0, out.decode(), err.decode())
        for process, (out, err) in zip(started, outputs, strict=True)
    ]


async def test_the_default_smi_canary_follows_its_weights_and_is_promoted(
    shop: AccessNamespace, controller: Controller, http: aiohttp.ClientSession
) -> None:
    """No rootService: Argo's split has the stable Service as its root and a backend."""
    canary = Canary(shop, controller, "web")
    steps = Steps(canary, http, canary.stable)
    canary.deploy(
        "v1",
        [
            {"setWeight": 20},
            {"pause": {}},
            {"setWeight": 50},
            {"pause": {}},
            {"setWeight": 80},
            {"pause": {"duration": TIMED_PAUSE}},
        ],
    )
    first = await steps.healthy("v1")
    stable_rs = f"{canary.name}-{first['status']['stableRS']}"
    canary.release("v2")

    await steps.at_weight(20, step=1)
    split = await canary.split()
    assert split is not None
    assert split["spec"]["service"] == canary.stable, split  # the root is a backend too
    await steps.follows("v2", "v1", 20)
    canary.promote()

    replica_set = await steps.at_weight(50, step=3)
    await steps.follows("v2", "v1", 50)
    canary_rs = replica_set["metadata"]["name"]
    await stat_and_tap_name_the_rollout(steps, stable_rs, canary_rs)
    canary.promote()  # then 80%, and a pause that ends by itself

    promoted = await steps.healthy("v2")
    assert f"{canary.name}-{promoted['status']['stableRS']}" == canary_rs
    assert weights(await canary.split()) == {canary.canary: 0, canary.stable: 100}


async def stat_and_tap_name_the_rollout(steps: Steps, stable_rs: str, canary_rs: str) -> None:
    """`weft stat rollout/NAME` and `rs/NAME` show the traffic of the Rollout's pods,
    and `weft tap rs/NAME` its live requests, with the client's identity."""
    name, ns = steps.canary.name, ("-n", NAMESPACE)
    window = ("-w", "10s", "-o", "json")
    commands = [
        ["stat", f"rollout/{name}", *ns, *window],
        ["stat", f"rs/{stable_rs}", *ns, *window],
        ["stat", f"rs/{canary_rs}", *ns, *window],
        ["tap", f"rs/{canary_rs}", *ns, "--limit", "3", "-o", "json"],
    ]
    results = await run_weft_while_calling(steps, commands)
    for (code, _, err), args in zip(results, commands, strict=True):
        assert code == 0, (args, err)
    rows = [json.loads(out) for _, out, _ in results[:3]]
    (rollout,), (stable,), (canary,) = rows
    assert (rollout["name"], rollout["meshed_pods"], rollout["pods"]) == (name, 2, 2), rollout
    for row, rs in ((stable, stable_rs), (canary, canary_rs)):
        assert (row["name"], row["meshed_pods"], row["pods"]) == (rs, 1, 1), row
        assert row["requests"] > 0, row
        assert row["success"] == 1.0, row
    assert rollout["requests"] >= max(stable["requests"], canary["requests"]), rows
    events = [json.loads(line) for line in results[3][1].splitlines() if line.strip()]
    assert len(events) == 3, results[3]
    client = identity_name(CLIENT, NAMESPACE)
    assert any(client in json.dumps(event) for event in events), events


async def test_an_aborted_default_smi_canary_sends_traffic_back_to_stable(
    shop: AccessNamespace, controller: Controller, http: aiohttp.ClientSession
) -> None:
    canary = Canary(shop, controller, "shop")
    steps = Steps(canary, http, canary.stable)
    canary.deploy("v1", [{"setWeight": 50}, {"pause": {}}])
    await steps.healthy("v1")
    canary.release("v2")
    await steps.at_weight(50, step=1)
    await steps.follows("v2", "v1", 50)

    canary.abort()

    async def aborted() -> dict[str, Any] | None:
        found = await canary.rollout()
        status = found.get("status", {})
        return found if status.get("abort") and status.get("phase") == "Degraded" else None

    found = await canary.until(aborted, f"Rollout {canary.name} Degraded, aborted", 60)
    assert "abort" in found["status"].get("message", "").lower(), found["status"]

    async def back_on_stable() -> bool:
        split = await canary.split()
        return (
            split is not None
            and weights(split) == {canary.canary: 0, canary.stable: 100}
            and condition(split, "Programmed")
        )

    await canary.until(back_on_stable, "Argo's split back at 0/100, Programmed", 60)
    await eventually(lambda: steps.only("v1"), "all traffic back on v1", 60)
    seen = await canary.who(http, SAMPLE // 2, canary.stable)
    assert seen == {"v1": SAMPLE // 2}, seen


async def test_a_canary_with_a_root_service_is_promoted(
    shop: AccessNamespace, controller: Controller, http: aiohttp.ClientSession
) -> None:
    canary = Canary(shop, controller, "api")
    root = canary.name  # the Service clients call; Argo's split steers it
    steps = Steps(canary, http, root)
    canary.deploy("v1", [{"setWeight": 30}, {"pause": {}}], root=root)
    await steps.healthy("v1")
    canary.release("v2")
    await steps.at_weight(30, step=1)
    split = await canary.split()
    assert split is not None
    assert split["spec"]["service"] == root, split
    await steps.follows("v2", "v1", 30)
    canary.promote()
    await steps.healthy("v2")
