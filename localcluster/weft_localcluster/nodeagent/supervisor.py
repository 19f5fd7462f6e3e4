"""One container of a pod: start it, probe it, restart it per policy with backoff, stop it.

A crash is recorded, never raised: the pod worker and the agent carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weft_localcluster.nodeagent import api_access, prober, runtime
from weft_localcluster.nodeagent.background import spawn
from weft_localcluster.nodeagent.context import AgentContext
from weft_localcluster.nodeagent.downward import PodFields
from weft_localcluster.nodeagent.env import ConfigError, container_env
from weft_localcluster.nodeagent.images import ImagePullError
from weft_localcluster.nodeagent.launch import Identity, LaunchPlan, launch_plan
from weft_localcluster.nodeagent.mounts import container_mounts
from weft_localcluster.nodeagent.network import Sandbox
from weft_localcluster.nodeagent.pod_files import PodFiles
from weft_localcluster.nodeagent.probes import ProbeResult, ProbeSpec, probe_spec
from weft_localcluster.nodeagent.restarts import CrashBackoff, should_restart
from weft_localcluster.nodeagent.status import ContainerState, Terminated

log = logging.getLogger(__name__)
CONFIG_RETRY = 5.0
LOG_MESSAGE_BYTES = 2048  # FallbackToLogsOnError: the end of the log as the message


@dataclass
class PodScope:
    """What a container needs of its pod."""

    context: AgentContext
    sandbox: Sandbox
    files: PodFiles
    runtime_dir: Path
    logs_dir: Path
    current_pod: Callable[[], dict[str, Any]]
    changed: Callable[[], None]

    def fields(self) -> PodFields:
        return PodFields(self.current_pod(), self.sandbox.pod_ip, self.context.network.gateway)

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        spawn(self.context.kube.event(self.current_pod(), reason, message, warning))


class ContainerSupervisor:
    def __init__(self, scope: PodScope, container: dict[str, Any], state: ContainerState) -> None:
        self.scope = scope
        self.spec = container
        self.state = state  # shared with the pod worker, which reports it
        self.kind = state.kind
        self.first_started = asyncio.Event()  # a sidecar lets the next init container go
        self.task: asyncio.Task[None] | None = None
        self._process: runtime.ContainerProcess | None = None
        self.plan: LaunchPlan | None = None  # the latest run's (kubectl exec runs as it)
        self._backoff = CrashBackoff(initial=scope.context.crash_backoff)

    def launch(self) -> asyncio.Task[None]:
        self.task = asyncio.get_running_loop().create_task(self._supervise())
        return self.task

    # -- the restart loop -------------------------------------------------------------
    async def _supervise(self) -> None:
        while True:
            plan = self.plan = await self._plan()
            if plan is None:
                return  # the image cannot be pulled: waiting, for good
            exit_code = await self._run_once(plan)
            policy = self.scope.current_pod()["spec"].get("restartPolicy", "Always")
            if not should_restart(self.kind, policy, exit_code):
                return
            delay = self._backoff.delay_after_exit(time.monotonic())
            self.state.last_terminated, self.state.terminated = self.state.terminated, None
            if delay:
                self._wait(
                    "CrashLoopBackOff",
                    f"back-off {delay:.0f}s restarting failed container={self.state.name} "
                    f"pod={self.scope.current_pod()['metadata']['name']}",
                )
                self.scope.event("BackOff", "Back-off restarting failed container", True)
                await asyncio.sleep(delay)
            else:
                self._wait("ContainerCreating", "")
            self.state.restart_count += 1

    async def _plan(self) -> LaunchPlan | None:
        """How to run the container now; waits out configuration errors."""
        while True:
            try:
                image = self.scope.context.images.resolve(self.spec["image"])
                pod = self.scope.current_pod()
                fields = self.scope.fields()
                spec_env = container_env(
                    self.spec, fields, self.scope.files.lookup, self.scope.context.allocatable
                )
                mounts = container_mounts(self.spec, self.scope.files.volume_dir, spec_env)
                own_dir = self.scope.runtime_dir / "containers" / self.state.name
                own_dir.mkdir(parents=True, exist_ok=True)
                return launch_plan(
                    pod, self.spec, image, spec_env, mounts, own_dir, api_access.service_env()
                )
            except ImagePullError as error:
                self._wait("ErrImagePull", str(error))
                self.scope.event("Failed", str(error), warning=True)
                return None
            except ConfigError as error:
                self._wait("CreateContainerConfigError", str(error))
            await asyncio.sleep(CONFIG_RETRY)
            with contextlib.suppress(Exception):  # objects created since may fix it
                await self.scope.files.fetch(self.scope.current_pod())

    async def _run_once(self, plan: LaunchPlan) -> int:
        state = self.state
        log_file = self.scope.logs_dir / state.name / f"{state.restart_count}.log"
        command = runtime.in_pod(self.scope.sandbox.netns, plan.argv, plan.identity, plan.binds)
        try:
            api_access.ensure_mount_points(plan.binds)
            process = await runtime.start(command, plan.env, plan.cwd, log_file)
        except OSError as error:
            return self._terminated(time.time(), 128, None, f"failed to start: {error}")
        self._process = process
        uid = self.scope.current_pod()["metadata"]["uid"]
        state.container_id = f"weft://{uid}/{state.name}/{state.restart_count}"
        state.running_since = process.started_at
        state.waiting_reason = state.waiting_message = ""
        probes = self._probes()
        running = _RunningProbes(self, process, probes, plan)
        if "startup" not in probes:
            self.mark_started()
        self.scope.changed()
        self.scope.event("Started", f"Started container {state.name}")
        try:
            returncode = await running.until_exit()
        finally:
            running.cancel()
        code, sig = runtime.exit_code(returncode)
        message = _log_tail(log_file) if code and self._logs_on_error() else ""
        return self._terminated(process.started_at, code, sig, message)

    def _terminated(self, started: float, code: int, sig: int | None, message: str) -> int:
        state = self.state
        state.terminated = Terminated(
            exit_code=code,
            reason="Completed" if code == 0 else "Error",
            started_at=started,
            finished_at=time.time(),
            container_id=state.container_id or "",
            signal=sig,
            message=message,
        )
        state.running_since, state.ready, state.started = None, False, False
        self._process = None
        self.scope.changed()
        return code

    def _wait(self, reason: str, message: str) -> None:
        self.state.waiting_reason, self.state.waiting_message = reason, message
        self.scope.changed()

    def mark_started(self) -> None:
        """Running, and past its startup probe if it has one."""
        self.state.started = True
        self.first_started.set()
        if "readinessProbe" not in self.spec:
            self.state.ready = True
        self.scope.changed()

    def _probes(self) -> dict[str, ProbeSpec]:
        names = {
            "startup": "startupProbe",
            "readiness": "readinessProbe",
            "liveness": "livenessProbe",
        }
        found = {}
        for kind, key in names.items():
            if self.spec.get(key):
                try:
                    found[kind] = probe_spec(self.spec[key], self.spec)
                except ConfigError as error:
                    log.warning("container %s: %s; probe ignored", self.state.name, error)
        return found

    def _logs_on_error(self) -> bool:
        return self.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError"

    # -- stopping ---------------------------------------------------------------------
    async def stop(self, grace: float) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        process = self._process
        if process is not None:
            self.scope.event("Killing", f"Stopping container {self.state.name}")
            code, sig = runtime.exit_code(await process.stop(grace))
            self._terminated(process.started_at, code, sig, "")


class _RunningProbes:
    """The probes of one run of a container; a failed liveness or startup probe ends it."""

    def __init__(
        self,
        supervisor: ContainerSupervisor,
        process: runtime.ContainerProcess,
        specs: dict[str, ProbeSpec],
        plan: LaunchPlan,
    ) -> None:
        self.supervisor = supervisor
        self.process = process
        self.unhealthy = asyncio.Event()
        self.started = asyncio.Event()
        if "startup" not in specs:
            self.started.set()
        scope = supervisor.scope
        self.target = prober.ProbeTarget(
            netns_path=scope.sandbox.netns_path,
            pod_ip=scope.sandbox.pod_ip,
            command_in_container=lambda argv: (
                runtime.in_pod(scope.sandbox.netns, argv, plan.identity, plan.binds),
                plan.env,
            ),
            command_in_pod=lambda argv: runtime.in_pod(scope.sandbox.netns, argv, Identity()),
        )
        loop = asyncio.get_running_loop()
        self.tasks = [loop.create_task(self._loop(kind, spec)) for kind, spec in specs.items()]

    async def until_exit(self) -> int:
        exited = asyncio.ensure_future(self.process.wait())
        unhealthy = asyncio.ensure_future(self.unhealthy.wait())
        try:
            await asyncio.wait({exited, unhealthy}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            unhealthy.cancel()
        if not exited.done():
            grace = self.supervisor.scope.current_pod()["spec"].get(
                "terminationGracePeriodSeconds", 30
            )
            return await self.process.stop(float(grace))
        return exited.result()

    def cancel(self) -> None:
        for task in self.tasks:
            task.cancel()

    async def _loop(self, kind: str, spec: ProbeSpec) -> None:
        result = ProbeResult(spec, ok=kind == "liveness")
        if kind != "startup":
            await self.started.wait()
        await asyncio.sleep(spec.initial_delay)
        while True:
            passed = await prober.probe(spec.action, self.target, spec.timeout)
            if result.record(passed):
                self._verdict(kind, result.ok)
            if kind == "startup" and result.ok:
                return
            await asyncio.sleep(spec.period)

    def _verdict(self, kind: str, ok: bool) -> None:
        supervisor = self.supervisor
        name = supervisor.state.name
        if kind == "readiness":
            supervisor.state.ready = ok
            supervisor.scope.changed()
        elif kind == "startup" and ok:
            self.started.set()
            supervisor.mark_started()
        elif not ok:
            supervisor.scope.event(
                "Unhealthy", f"Container {name} failed {kind} probe, will be restarted", True
            )
            self.unhealthy.set()
        if not ok and kind == "readiness":
            supervisor.scope.event("Unhealthy", f"Readiness probe of {name} failed", True)


def _log_tail(path: Path) -> str:
    try:
        with open(path, "rb") as log_file:
            log_file.seek(0, 2)
            size = log_file.tell()
            log_file.seek(max(0, size - LOG_MESSAGE_BYTES))
            return log_file.read().decode(errors="replace").strip()
    except OSError:
        return ""
