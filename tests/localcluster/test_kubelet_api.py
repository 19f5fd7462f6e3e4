"""The node's kubelet API, through the real kubectl and API server: logs, exec, port-forward."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.api_client import ApiClient

from tests.localcluster.test_node_agent import create, netns_of, pod, python, read, until_ready
from weft_localcluster.cluster import NODE_NAME, ClusterInfo
from weft_localcluster.nodeagent.kubelet_api import KUBELET_PORT
from weft_localcluster.waiting import eventually

UNTIL = 60.0
TICKER = """
import itertools, time
for n in itertools.count():
    print('tick', n, flush=True)
    time.sleep(0.2)
"""
LINES = "import time\nprint('one\\ntwo\\nthree', flush=True)\ntime.sleep(3600)"
# Counts its runs in an emptyDir (at $DATA: the node agent rewrites volume paths in the
# environment): the first run fails, the second stays up.
CRASH_ONCE = """
import os, pathlib, sys, time
count = pathlib.Path(os.environ['DATA'], 'runs')
runs = int(count.read_text()) if count.exists() else 0
count.write_text(str(runs + 1))
print('run', runs, flush=True)
if runs == 0:
    sys.exit(1)
time.sleep(3600)
"""
SERVER = """
from http.server import BaseHTTPRequestHandler, HTTPServer
class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"hello from the pod")
HTTPServer(("", 8080), Hello).serve_forever()
"""


def kubectl_env(cluster: ClusterInfo) -> dict[str, str]:
    return {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}


def kubectl_path(cluster: ClusterInfo) -> str:
    return str(Path(cluster.bin_dir) / "kubectl")


async def kubectl(
    cluster: ClusterInfo, *args: str, stdin: bytes | None = None
) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        kubectl_path(cluster),
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=kubectl_env(cluster),
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), UNTIL)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def running_pod(api: ApiClient, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    await create(api, namespace, body)
    return await until_ready(api, namespace, body["metadata"]["name"])


async def test_logs_of_each_container_with_tail_and_follow(
    cluster: ClusterInfo, api: ApiClient, namespace: str
) -> None:
    body = pod("talker", python("lines", LINES), python("ticker", TICKER))
    await running_pod(api, namespace, body)
    n = ["-n", namespace]

    code, out, err = await kubectl(cluster, "logs", *n, "talker", "-c", "lines")
    assert (code, out) == (0, "one\ntwo\nthree\n"), err
    code, out, err = await kubectl(cluster, "logs", *n, "talker", "-c", "lines", "--tail=2")
    assert (code, out) == (0, "two\nthree\n"), err
    code, out, err = await kubectl(cluster, "logs", *n, "talker", "-c", "lines", "--tail=0")
    assert (code, out) == (0, ""), err

    # -f streams what the container writes after the request: wait for a later line.
    process = await asyncio.create_subprocess_exec(
        kubectl_path(cluster), "logs", *n, "talker", "-c", "ticker", "-f", "--tail=1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=kubectl_env(cluster),
    )  # fmt: skip
    assert process.stdout is not None
    try:
        first = int((await asyncio.wait_for(process.stdout.readline(), UNTIL)).split()[1])
        while True:
            line = await asyncio.wait_for(process.stdout.readline(), UNTIL)
            assert line, "kubectl logs -f ended while the container still runs"
            if int(line.split()[1]) >= first + 3:
                break
    finally:
        process.kill()
        await process.wait()


async def test_previous_logs_after_a_restart(
    cluster: ClusterInfo, api: ApiClient, namespace: str
) -> None:
    container = python(
        "crash",
        CRASH_ONCE,
        volumeMounts=[{"name": "d", "mountPath": "/data"}],
        env=[{"name": "DATA", "value": "/data"}],
    )
    body = pod("crashes", container, volumes=[{"name": "d", "emptyDir": {}}])
    await create(api, namespace, body)

    async def restarted_and_running() -> bool:
        statuses = (await read(api, namespace, "crashes")).get("status", {})
        status = (statuses.get("containerStatuses") or [{}])[0]
        return status.get("restartCount") == 1 and "running" in status.get("state", {})

    await eventually(restarted_and_running, "the second run of the container", within=UNTIL)
    n = ["-n", namespace]

    code, out, err = await kubectl(cluster, "logs", *n, "crashes")
    assert (code, out) == (0, "run 1\n"), err
    code, out, err = await kubectl(cluster, "logs", *n, "crashes", "--previous")
    assert (code, out) == (0, "run 0\n"), err


async def test_logs_name_a_missing_previous_run(
    cluster: ClusterInfo, api: ApiClient, namespace: str
) -> None:
    await running_pod(api, namespace, pod("once", python("lines", LINES)))
    code, _, err = await kubectl(cluster, "logs", "-n", namespace, "once", "--previous")
    assert code != 0
    assert 'previous terminated container "lines" in pod "once" not found' in err


async def test_exec_runs_in_the_pods_network_as_the_containers_user(
    cluster: ClusterInfo, api: ApiClient, namespace: str
) -> None:
    container = python("main", LINES, securityContext={"runAsUser": 1234, "runAsGroup": 1234})
    found = await running_pod(api, namespace, pod("shell", container))
    script = "echo out; echo err >&2; id -u; readlink /proc/self/ns/net; exit 3"
    code, out, err = await kubectl(
        cluster, "exec", "-n", namespace, "shell", "-c", "main", "--", "sh", "-c", script
    )
    netns = Path("/run/netns") / netns_of(cluster, found)
    assert code == 3, err
    assert out.split() == ["out", "1234", f"net:[{netns.stat().st_ino}]"]
    assert "err" in err

    # stdin reaches the command (-i), and the environment is the container's.
    code, out, err = await kubectl(
        cluster, "exec", "-i", "-n", namespace, "shell", "--", "sh", "-c", 'cat; echo "$HOSTNAME"',
        stdin=b"from stdin\n",
    )  # fmt: skip
    assert (code, out) == (0, "from stdin\nshell\n"), err


async def test_exec_with_a_terminal(cluster: ClusterInfo, api: ApiClient, namespace: str) -> None:
    await running_pod(api, namespace, pod("tty", python("main", LINES)))
    controller, terminal = pty.openpty()
    process = await asyncio.create_subprocess_exec(
        kubectl_path(cluster), "exec", "-it", "-n", namespace, "tty", "--",
        "sh", "-c", "test -t 0 && echo is-a-tty; exit 5",
        stdin=terminal, stdout=terminal, stderr=terminal, env=kubectl_env(cluster),
    )  # fmt: skip
    os.close(terminal)
    output = b""
    loop = asyncio.get_running_loop()
    try:
        code = await asyncio.wait_for(process.wait(), UNTIL)
        while True:  # what kubectl wrote before it exited
            try:
                chunk = await loop.run_in_executor(None, os.read, controller, 4096)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(controller)
    assert code == 5, output
    assert b"is-a-tty" in output


async def test_port_forward_reaches_the_pods_server(
    cluster: ClusterInfo, api: ApiClient, namespace: str
) -> None:
    server = python("web", SERVER, ports=[{"containerPort": 8080}])
    server["readinessProbe"] = {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
    await running_pod(api, namespace, pod("web", server))
    process = await asyncio.create_subprocess_exec(
        kubectl_path(cluster), "port-forward", "-n", namespace, "pod/web", ":8080",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=kubectl_env(cluster),
    )  # fmt: skip
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), UNTIL)).decode()
        match = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> 8080", line)
        assert match, line
        url = f"http://127.0.0.1:{match.group(1)}/"

        def fetch() -> bytes:
            with urllib.request.urlopen(url, timeout=10) as response:
                body: bytes = response.read()
                return body

        for _ in range(3):  # each connection is a stream of its own
            assert await asyncio.to_thread(fetch) == b"hello from the pod"
    finally:
        process.kill()
        await process.wait()


async def test_the_node_advertises_its_kubelet_endpoint(api: ApiClient) -> None:
    async def advertised() -> int | None:
        node = await read_node(api)
        port: int = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        return port or None

    assert await eventually(advertised, "the kubelet port") == KUBELET_PORT


async def read_node(api: ApiClient) -> dict[str, Any]:
    response = await client.CoreV1Api(api).read_node(NODE_NAME, _preload_content=False)
    found: dict[str, Any] = json.loads(await response.read())
    return found
