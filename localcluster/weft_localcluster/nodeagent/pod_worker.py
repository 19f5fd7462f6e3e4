"""One pod on this node, from its sandbox to its final delete, as the kubelet runs it.

Order: network namespace and volumes; init containers one by one (a sidecar, an init
container with restartPolicy Always, lets the next one start once it has started);
then the containers. When every container is done for good (restartPolicy Never or
OnFailure), sidecars stop and the pod's network goes. On deletion: the containers get
SIGTERM, then the sidecars in reverse order, within the grace period, then SIGKILL;
the namespace is removed and the pod deleted for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from kubernetes_asyncio.client.exceptions import ApiException

from weft_localcluster.nodeagent import network
from weft_localcluster.nodeagent.admission import admission_failure
from weft_localcluster.nodeagent.commands import CommandError
from weft_localcluster.nodeagent.context import AgentContext
from weft_localcluster.nodeagent.downward import PodFields
from weft_localcluster.nodeagent.env import ConfigError
from weft_localcluster.nodeagent.pod_files import PodFiles
from weft_localcluster.nodeagent.restarts import Kind
from weft_localcluster.nodeagent.status import initial_states, pod_status, rejected_status
from weft_localcluster.nodeagent.supervisor import ContainerSupervisor, PodScope

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRY = 2.0
FILES_REFRESH = 30.0
_RETRYABLE = (ConfigError, ApiException, OSError, CommandError)


def grace_of(pod: dict[str, Any]) -> float:
    metadata, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    seconds = metadata.get("deletionGracePeriodSeconds")
    if seconds is None:
        seconds = spec.get("terminationGracePeriodSeconds", 30)
    return float(seconds)


class PodWorker:
    def __init__(self, context: AgentContext, pod: dict[str, Any]) -> None:
        self.context = context
        self.pod = pod
        metadata = pod["metadata"]
        self.uid: str = metadata["uid"]
        self.label = f"{metadata['namespace']}/{metadata['name']}"
        folder = f"{metadata['namespace']}_{metadata['name']}_{self.uid}"
        self.runtime_dir = context.network.runtime_dir / folder
        self.logs_dir = context.logs_dir / folder
        self.files = PodFiles(context.kube, self.runtime_dir / "volumes")
        self.states = initial_states(pod)
        self.supervisors: list[ContainerSupervisor] = []
        self.sandbox: network.Sandbox | None = None
        self.pod_ip = ""  # reported even after the sandbox is gone, as Kubernetes does
        self._rejection: tuple[str, str] | None = None
        self._initialized = False  # the init containers are done, the containers started
        self._start_time = time.time()
        self._dirty = asyncio.Event()
        self._stop = asyncio.Event()
        self._grace = 0.0
        self._delete_when_done = False
        self._published: dict[str, Any] | None = None
        self._service_rules: list[str] | None = None  # WEFT-SERVICES as last applied
        self._service_lock = asyncio.Lock()
        self.task: asyncio.Task[None] | None = None

    # -- what the agent tells the worker ----------------------------------------------
    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name=self.label)

    def update(self, pod: dict[str, Any]) -> None:
        self.pod = pod
        if pod["metadata"].get("deletionTimestamp"):
            self.request_stop(grace_of(pod), delete=True)

    def request_stop(self, grace: float, delete: bool) -> None:
        if not self._stop.is_set():
            self._grace, self._delete_when_done = grace, delete
            self._stop.set()

    def write_hosts(self, text: str) -> None:
        if self.sandbox is not None:
            with contextlib.suppress(OSError):
                network.write_hosts(self.sandbox, text)

    async def sync_services(self, rules: list[str], force: bool = False) -> None:
        """Apply the ClusterIP translation (service_nat.py) when it changed, or `force`d."""
        async with self._service_lock:
            sandbox = self.sandbox
            if sandbox is None or (rules == self._service_rules and not force):
                return
            try:
                await network.apply_service_nat(sandbox, rules)
            except (CommandError, OSError) as error:  # the namespace went, or comes again
                log.warning("pod %s: ClusterIP rules not applied: %s", self.label, error)
                self._service_rules = None
            else:
                self._service_rules = rules

    # -- the pod's life ---------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        publisher = loop.create_task(self._publish_loop())
        lifecycle = loop.create_task(self._guarded_life())
        try:
            await self._stop.wait()  # a terminal pod, its lifecycle over, waits here too
        finally:
            lifecycle.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lifecycle
            await self._shut_down(self._grace)
            publisher.cancel()
        with contextlib.suppress(ApiException, OSError):
            await self._publish()  # the containers' final states
        if self._delete_when_done:
            with contextlib.suppress(ApiException, OSError):
                meta = self.pod["metadata"]
                await self.context.kube.delete_pod(meta["namespace"], meta["name"], self.uid)

    async def _guarded_life(self) -> None:
        try:
            await self._life()
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must not take the agent, or other pods, down
            log.exception("pod %s: worker failed", self.label)

    async def _life(self) -> None:
        self._rejection = admission_failure(self.pod)
        self._changed()
        if self._rejection is not None:
            return
        sandbox = await self._retry("creating the pod's network", self._create_sandbox)
        scope = PodScope(
            context=self.context,
            sandbox=sandbox,
            files=self.files,
            runtime_dir=self.runtime_dir,
            logs_dir=self.logs_dir,
            current_pod=lambda: self.pod,
            changed=self._changed,
        )
        spec = self.pod["spec"]
        containers = [*(spec.get("initContainers") or []), *spec["containers"]]
        self.supervisors = [
            ContainerSupervisor(scope, container, state)
            for container, state in zip(containers, self.states, strict=True)
        ]
        await self._retry("writing volumes", self._write_files)
        refresher = asyncio.get_running_loop().create_task(self._refresh_files())
        try:
            if not await self._initialize():
                return
            await asyncio.gather(*(s.launch() for s in self._of(Kind.MAIN)))
            # Every container is done for good: the pod is terminal.
            await self._stop_sidecars(grace_of(self.pod))
            await self._release_sandbox()
        finally:
            refresher.cancel()

    async def _initialize(self) -> bool:
        """Run the init containers in order; False when the pod cannot go further."""
        for supervisor in self.supervisors:
            if supervisor.kind is Kind.INIT:
                await supervisor.launch()
                if not supervisor.state.completed:
                    return False  # failed for good, or its image cannot be pulled
                # proxy-init appended its jump: put WEFT-SERVICES' after it again.
                await self.sync_services(self.context.service_rules(), force=True)
            elif supervisor.kind is Kind.SIDECAR:
                running = supervisor.launch()
                started = asyncio.ensure_future(supervisor.first_started.wait())
                await asyncio.wait({running, started}, return_when=asyncio.FIRST_COMPLETED)
                if not started.done():
                    started.cancel()
                    return False  # it never started (its image cannot be pulled)
        self._initialized = True
        for supervisor in self._of(Kind.MAIN):
            supervisor.state.waiting_reason = "ContainerCreating"
        return True

    def _of(self, kind: Kind) -> list[ContainerSupervisor]:
        return [s for s in self.supervisors if s.kind is kind]

    async def _retry(self, what: str, step: Callable[[], Awaitable[T]]) -> T:
        """Run `step` until it succeeds, showing why it did not on every container."""
        waiting = [(s.waiting_reason, s.waiting_message) for s in self.states]
        while True:
            try:
                result = await step()
            except _RETRYABLE as error:
                config = isinstance(error, ConfigError)
                message = str(error) if config else f"{what}: {error}"
                log.warning("pod %s: %s", self.label, message)
                for state in self.states:
                    state.waiting_reason = (
                        "CreateContainerConfigError" if config else "ContainerCreating"
                    )
                    state.waiting_message = message
                self._changed()
                await asyncio.sleep(RETRY)
            else:
                for state, (reason, message) in zip(self.states, waiting, strict=True):
                    state.waiting_reason, state.waiting_message = reason, message
                self._changed()
                return result

    async def _create_sandbox(self) -> network.Sandbox:
        net = self.context.network
        meta = self.pod["metadata"]
        if self.sandbox is not None:  # a failed attempt: start over
            await network.delete_sandbox(self.sandbox)
        else:
            self.pod_ip = self.context.pool.allocate()
        sandbox = network.Sandbox(
            netns=net.netns(meta["namespace"], meta["name"], self.uid),
            host_veth=net.host_veth(self.uid),
            pod_ip=self.pod_ip,
        )
        self.sandbox = sandbox
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        for folder in (self.runtime_dir, *self.runtime_dir.parents[:2]):
            folder.chmod(0o755)  # containers running as other users reach their volumes
        rules = self.context.service_rules()
        async with self._service_lock:
            await network.create_sandbox(
                net,
                sandbox,
                self.context.service_cidr,
                service_rules=rules,
                hosts=self.context.hosts_for(self.pod, sandbox.pod_ip),
            )
            self._service_rules = rules
        return sandbox

    async def _write_files(self) -> None:
        fields = PodFields(self.pod, self.pod_ip, self.context.network.gateway)
        await self.files.write(self.pod, fields, self.context.allocatable)

    async def _refresh_files(self) -> None:
        while True:
            await asyncio.sleep(FILES_REFRESH)
            try:
                await self._write_files()
            except Exception as error:  # the next refresh may succeed
                log.warning("pod %s: refreshing volumes: %s", self.label, error)

    # -- stopping -----------------------------------------------------------------------
    async def _shut_down(self, grace: float) -> None:
        deadline = time.monotonic() + grace
        others = [s for s in self.supervisors if s.kind is not Kind.SIDECAR]
        await asyncio.gather(*(s.stop(grace) for s in others))
        await self._stop_sidecars(deadline - time.monotonic())
        await self._release_sandbox()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)

    async def _stop_sidecars(self, grace: float) -> None:
        deadline = time.monotonic() + grace
        for supervisor in reversed(self._of(Kind.SIDECAR)):
            await supervisor.stop(deadline - time.monotonic())  # at least MINIMUM_GRACE

    async def _release_sandbox(self) -> None:
        sandbox, self.sandbox = self.sandbox, None
        if sandbox is not None:
            await network.delete_sandbox(sandbox)
            self.context.pool.release(sandbox.pod_ip)
            self._changed()

    # -- status -------------------------------------------------------------------------
    def _changed(self) -> None:
        self._dirty.set()

    async def _publish_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await asyncio.sleep(0.05)  # one write for a burst of changes
            try:
                await self._publish()
            except Exception as error:  # written at the next change, or retried
                log.warning("pod %s: status not written: %s", self.label, error)
                self._dirty.set()
                await asyncio.sleep(RETRY)

    async def _publish(self) -> None:
        if self._rejection is not None:
            status = rejected_status(*self._rejection)
        else:
            status = pod_status(
                self.pod,
                self.states,
                previous_conditions=(self._published or {}).get("conditions", []),
                pod_ip=self.pod_ip,
                host_ip=self.context.network.gateway,
                start_time=self._start_time,
                sandbox_ready=self.sandbox is not None,
                initialized=self._initialized,
                now=time.time(),
            )
        if status == self._published:
            return
        meta = self.pod["metadata"]
        await self.context.kube.patch_pod_status(meta["namespace"], meta["name"], status)
        self._published = status
