"""The node agent on the real local cluster: pods the real scheduler binds run as processes
in network namespaces on the node's bridge, and report as the kubelet would."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.api_client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException

from weft_api import mesh
from weft_localcluster import processes
from weft_localcluster.cluster import ClusterInfo
from weft_localcluster.nodeagent import locate
from weft_localcluster.waiting import eventually

PYTHON = "python:3.11"


def pod(name: str, *containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"terminationGracePeriodSeconds": 2, "containers": list(containers), **spec},
    }


def python(name: str, code: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": PYTHON, "command": ["python", "-c", code], **fields}


def http_server(port: int = 8080) -> dict[str, Any]:
    return {
        "name": "http",
        "image": PYTHON,
        "command": ["python", "-m", "http.server", str(port)],
        "ports": [{"name": "http", "containerPort": port}],
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
    }


async def create(api: ApiClient, namespace: str, body: dict[str, Any]) -> None:
    await client.CoreV1Api(api).create_namespaced_pod(namespace, body)


async def read(api: ApiClient, namespace: str, name: str) -> dict[str, Any]:
    """The pod as plain JSON, as the API serves it (the client's models drop nothing)."""
    core = client.CoreV1Api(api)
    response = await core.read_namespaced_pod(name, namespace, _preload_content=False)
    body = await response.read()
    if response.status != 200:
        raise ApiException(status=response.status, reason=body.decode())
    found: dict[str, Any] = json.loads(body)
    return found


async def until_ready(api: ApiClient, namespace: str, name: str) -> dict[str, Any]:
    async def ready() -> dict[str, Any] | None:
        found = await read(api, namespace, name)
        conditions = (found.get("status") or {}).get("conditions") or []
        ok = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
        return found if ok else None

    return await eventually(ready, f"pod {name} to be Ready", within=60)


def netns_of(cluster: ClusterInfo, found: dict[str, Any]) -> str:
    meta = found["metadata"]
    return locate.pod_netns(Path(cluster.state_dir), meta["namespace"], meta["name"], meta["uid"])


async def run_in(netns: str, code: str) -> str:
    """Python run inside a pod's network namespace (as the pod sees the network)."""
    process = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", netns, sys.executable, "-c", code,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    return out.decode().strip()


async def namespaces_on_machine() -> list[str]:
    process = await asyncio.create_subprocess_exec(
        "ip", "netns", "list", stdout=asyncio.subprocess.PIPE
    )  # fmt: skip
    out, _ = await process.communicate()
    return [line.split()[0] for line in out.decode().splitlines() if line.strip()]


def processes_of(netns: str) -> list[str]:
    return [p.name for p in Path("/proc").iterdir() if p.name.isdigit() and _in(p, netns)]


def still_running(pids: list[str]) -> list[str]:
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()]


def _in(proc: Path, netns: str) -> bool:
    try:
        return (proc / "ns" / "net").stat().st_ino == Path(f"/run/netns/{netns}").stat().st_ino
    except OSError:
        return False


CONNECT = 'import urllib.request; print(urllib.request.urlopen("{url}", timeout=3).status)'
READ = 'import urllib.request; print(urllib.request.urlopen("{url}", timeout=1).read().decode())'
NAMED_SERVER = """
from http.server import BaseHTTPRequestHandler, HTTPServer
class Name(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"{name}")
HTTPServer(("", 8080), Name).serve_forever()
"""


async def test_a_deployment_of_a_sample_image_gets_ready_pods_on_the_bridge(
    cluster: ClusterInfo, api: ApiClient, namespace: str
) -> None:
    labels = {"app": "books"}
    container = {
        "name": "books",
        "image": "weft.dev/samples/books:v1",
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1},
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "books"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }
    await client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment)

    async def ready_pods() -> list[Any] | None:
        pods = (await client.CoreV1Api(api).list_namespaced_pod(namespace)).items
        ready = [
            p
            for p in pods
            if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        ]
        return ready if len(ready) == 2 else None

    pods = await eventually(ready_pods, "two Ready books pods", within=60)
    node = await client.CoreV1Api(api).read_node("weft-local")
    network = locate.node_network(Path(cluster.state_dir))
    assert node.spec.pod_cidr == str(network.subnet)
    for found in pods:
        assert found.status.phase == "Running"
        assert found.status.host_ip == network.gateway
        assert ipaddress.ip_address(found.status.pod_ip) in network.subnet
        (status,) = found.status.container_statuses
        assert (status.ready, status.restart_count) == (True, 0)
        assert status.state.running is not None
    # The real controller-manager publishes them as a Service's endpoints.
    service = {
        "metadata": {"name": "books"},
        "spec": {"selector": labels, "ports": [{"port": 8080}]},
    }
    await client.CoreV1Api(api).create_namespaced_service(namespace, service)

    async def published() -> set[str] | None:
        slices = await client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(namespace)
        addresses = {
            address
            for s in slices.items
            for e in s.endpoints or []
            if e.conditions.ready
            for address in e.addresses
        }
        return addresses if len(addresses) == 2 else None

    assert await eventually(published, "the books endpoints") == {p.status.pod_ip for p in pods}


async def test_pods_reach_pods_and_services_by_name_and_cluster_ip_as_kube_proxy_gives_them(
    cluster: ClusterInfo, api: ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    await create(api, namespace, pod("server", http_server()))
    await create(api, namespace, pod("client", python("idle", "import time; time.sleep(600)")))
    for name, cluster_ip, app in (
        ("server-headless", "None", "server"),
        ("server", None, "server"),
        ("nobody", None, "nobody"),  # selects no pod: a ClusterIP without endpoints
    ):
        spec = {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]}
        if cluster_ip:
            spec["clusterIP"] = cluster_ip
            spec["ports"] = [{"port": 8080}]
        await core.create_namespaced_service(namespace, {"metadata": {"name": name}, "spec": spec})
    server = await until_ready(api, namespace, "server")
    client_netns = netns_of(cluster, await until_ready(api, namespace, "client"))
    server_ip = server["status"]["podIP"]

    assert await run_in(client_netns, CONNECT.format(url=f"http://{server_ip}:8080/")) == "200"

    # A headless Service resolves to its ready pods; a ClusterIP Service to its ClusterIP,
    # which the pod's namespace translates to the endpoints (port 80 -> 8080).
    cluster_ip = (await core.read_namespaced_service("server", namespace)).spec.cluster_ip
    fqdn = f"server-headless.{namespace}.svc.cluster.local"
    urls = [f"http://{h}:8080/" for h in ("server-headless", f"server-headless.{namespace}")]
    urls += [f"http://{fqdn}:8080/", f"http://{fqdn}.:8080/"]
    urls += [f"http://{cluster_ip}/", "http://server/", f"http://server.{namespace}.svc/"]
    for url in urls:

        async def reached(url: str = url) -> bool:
            return await run_in(client_netns, CONNECT.format(url=url)) == "200"

        await eventually(reached, f"{url} from the client pod", within=20)

    # A ClusterIP without endpoints is refused at once, inside the pod.
    nobody = (await core.read_namespaced_service("nobody", namespace)).spec.cluster_ip
    refused = await run_in(
        client_netns,
        f"import socket\ntry:\n socket.create_connection(('{nobody}', 80), timeout=3)\n"
        "except OSError as e: print(e.errno)",
    )
    assert refused == "111"  # ECONNREFUSED: the REJECT after the nat table


async def test_a_cluster_ip_follows_its_endpoints_within_a_second(
    cluster: ClusterInfo, api: ApiClient, namespace: str
) -> None:
    discovery = client.DiscoveryV1Api(api)
    for name in ("one", "two"):
        server = http_server()
        server["command"] = ["python", "-c", NAMED_SERVER.format(name=name)]
        await create(api, namespace, pod(name, server))
    one, two = [await until_ready(api, namespace, name) for name in ("one", "two")]
    await client.CoreV1Api(api).create_namespaced_service(
        namespace, {"metadata": {"name": "moving"}, "spec": {"ports": [{"port": 80}]}}
    )  # no selector: the test writes the slice
    cluster_ip = (
        await client.CoreV1Api(api).read_namespaced_service("moving", namespace)
    ).spec.cluster_ip

    def endpoint_slice(address: str) -> dict[str, Any]:
        return {
            "metadata": {"name": "moving", "labels": {"kubernetes.io/service-name": "moving"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [address]}],
            "ports": [{"port": 8080, "protocol": "TCP"}],
        }

    await discovery.create_namespaced_endpoint_slice(
        namespace, endpoint_slice(one["status"]["podIP"])
    )
    await create(api, namespace, pod("caller", python("idle", "import time; time.sleep(600)")))
    netns = netns_of(cluster, await until_ready(api, namespace, "caller"))
    fetch = READ.format(url=f"http://{cluster_ip}/")

    async def answers(name: str) -> bool:
        return await run_in(netns, fetch) == name

    await eventually(lambda: answers("one"), "the ClusterIP to reach pod one", within=20)
    started = time.monotonic()
    await discovery.patch_namespaced_endpoint_slice(
        "moving", namespace, {"endpoints": [{"addresses": [two["status"]["podIP"]]}]}
    )
    await eventually(lambda: answers("two"), "the ClusterIP to follow to pod two", within=5)
    followed = time.monotonic() - started
    print(f"the ClusterIP followed its endpoints in {followed:.2f}s")
    assert followed < 1.0
    await discovery.delete_namespaced_endpoint_slice("moving", namespace)

    async def refused() -> bool:
        return "Connection refused" in await run_in(netns, fetch)

    await eventually(refused, "the ClusterIP without endpoints to be refused", within=5)


async def test_config_maps_secrets_env_downward_api_and_tokens_reach_the_container(
    cluster: ClusterInfo, api: ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    await core.create_namespaced_config_map(
        namespace,
        {"metadata": {"name": "settings"}, "data": {"color": "blue", "app.conf": "x=1\n"}},
    )
    await core.create_namespaced_secret(
        namespace, {"metadata": {"name": "creds"}, "stringData": {"password": "s3cret"}}
    )
    report = """
import json, os, pathlib, time
read = lambda path: pathlib.Path(path).read_text()
print(json.dumps({
    "env": {k: os.environ[k] for k in ("COLOR", "PASSWORD", "POD_IP", "NAME", "GREETING")},
    "conf": read(os.environ["CONF"]),
    "labels": read(os.environ["INFO"] + "/labels"),
    "token": read(os.environ["TOKEN"]),
    "namespace": read("/var/run/secrets/kubernetes.io/serviceaccount/namespace".replace(
        "/var/run/secrets/kubernetes.io/serviceaccount", os.environ["API"])),
}), flush=True)
time.sleep(600)
"""
    container = python(
        "app",
        report,
        env=[
            {
                "name": "COLOR",
                "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "color"}},
            },
            {
                "name": "PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}},
            },
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "GREETING", "value": "hello $(NAME)"},
            {"name": "CONF", "value": "/etc/app/app.conf"},
            {"name": "INFO", "value": "/etc/podinfo"},
            {"name": "TOKEN", "value": "/var/run/secrets/tokens/token"},
            {"name": "API", "value": "/var/run/secrets/kubernetes.io/serviceaccount"},
        ],
        volumeMounts=[
            {"name": "config", "mountPath": "/etc/app"},
            {"name": "podinfo", "mountPath": "/etc/podinfo"},
            {"name": "token", "mountPath": "/var/run/secrets/tokens"},
        ],
    )
    volumes = [
        {"name": "config", "configMap": {"name": "settings"}},
        {
            "name": "podinfo",
            "downwardAPI": {
                "items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]
            },
        },
        {
            "name": "token",
            "projected": {
                "sources": [
                    {
                        "serviceAccountToken": {
                            "audience": "test.weft.dev",
                            "expirationSeconds": 600,
                            "path": "token",
                        }
                    }
                ]
            },
        },
    ]
    await create(api, namespace, pod("reporter", container, volumes=volumes))
    found = await until_ready(api, namespace, "reporter")
    meta = found["metadata"]
    log = Path(cluster.state_dir)

    async def report_line() -> dict[str, Any] | None:
        try:
            path = locate.container_log(log, namespace, "reporter", meta["uid"], "app")
            text = path.read_text().strip()
        except (LookupError, OSError):
            return None
        return json.loads(text.splitlines()[0]) if text else None

    seen = await eventually(report_line, "the reporter's output")
    assert seen["env"] == {
        "COLOR": "blue",
        "PASSWORD": "s3cret",
        "POD_IP": found["status"]["podIP"],
        "NAME": "reporter",
        "GREETING": "hello reporter",
    }
    assert seen["conf"] == "x=1\n"
    assert seen["labels"] == 'app="reporter"\n'
    assert seen["namespace"] == namespace  # the kube-api-access volume every pod gets
    claims = json.loads(base64.urlsafe_b64decode(seen["token"].split(".")[1] + "=="))
    assert claims["aud"] == ["test.weft.dev"]
    assert claims["sub"] == f"system:serviceaccount:{namespace}:default"
    assert claims["kubernetes.io"]["pod"]["name"] == "reporter"  # bound to the pod
    assert 590 <= claims["exp"] - claims["iat"] <= 610


async def test_a_crashing_container_restarts_with_backoff(
    cluster: ClusterInfo, api: ApiClient, namespace: str
) -> None:
    crash = python(
        "crash", "import sys; print('boom', flush=True); sys.exit(3)",
        terminationMessagePolicy="FallbackToLogsOnError",
    )  # fmt: skip
    await create(api, namespace, pod("crasher", crash))

    async def backing_off() -> dict[str, Any] | None:
        found = await read(api, namespace, "crasher")
        statuses = (found.get("status") or {}).get("containerStatuses") or [{}]
        waiting = (statuses[0].get("state") or {}).get("waiting") or {}
        return statuses[0] if waiting.get("reason") == "CrashLoopBackOff" else None

    status = await eventually(backing_off, "CrashLoopBackOff", within=30)
    assert status["restartCount"] >= 1  # the first restart is immediate, then 10 s, 20 s...
    assert "back-off 10s" in status["state"]["waiting"]["message"]
    last = status["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"], last["message"]) == (3, "Error", "boom")
    found = await read(api, namespace, "crasher")
    assert found["status"]["phase"] == "Running"  # as the kubelet reports a crash loop
    (agent,) = [
        r for r in processes.read_records(Path(cluster.state_dir)) if r.name == "weft-node-agent"
    ]
    assert processes.alive(agent)  # a crash loop is the pod's business, not the agent's


async def test_init_containers_then_a_sidecar_then_the_app_and_a_job_completes(
    cluster: ClusterInfo, api: ApiClient, namespace: str
) -> None:
    init = python(
        "init", "import os; open(os.environ['WORK'] + '/ready', 'w').write('init ran')",
        env=[{"name": "WORK", "value": "/work"}],
        volumeMounts=[{"name": "work", "mountPath": "/work"}],
    )  # fmt: skip
    sidecar = {
        **http_server(9000),
        "name": "sidecar",
        "restartPolicy": "Always",
        "startupProbe": {"tcpSocket": {"port": 9000}, "periodSeconds": 1},
    }
    sidecar.pop("readinessProbe")
    # Exits 0 only if the init container ran and the sidecar already answers.
    app = python(
        "app",
        "import os, urllib.request\n"
        "assert open(os.environ['WORK'] + '/ready').read() == 'init ran'\n"
        "urllib.request.urlopen('http://localhost:9000/', timeout=2)\n",
        env=[{"name": "WORK", "value": "/work"}],
        volumeMounts=[{"name": "work", "mountPath": "/work"}],
    )
    job = pod(
        "job", app, initContainers=[init, sidecar], restartPolicy="Never",
        volumes=[{"name": "work", "emptyDir": {}}],
    )  # fmt: skip
    await create(api, namespace, job)

    async def finished() -> dict[str, Any] | None:
        found = await read(api, namespace, "job")
        return found if found["status"].get("phase") in ("Succeeded", "Failed") else None

    found = await eventually(finished, "the job to finish", within=60)
    statuses = {s["name"]: s for s in found["status"]["initContainerStatuses"]}
    assert found["status"]["phase"] == "Succeeded", found["status"]
    assert statuses["init"]["state"]["terminated"]["exitCode"] == 0
    assert "terminated" in statuses["sidecar"]["state"]  # stopped once the app was done
    assert await eventually(
        lambda: _gone(netns_of(cluster, found)), "the finished pod's namespace to go"
    )


async def _gone(netns: str) -> bool:
    return netns not in await namespaces_on_machine()


async def test_an_injected_pods_proxy_init_sets_iptables_in_its_namespace_only(
    cluster: ClusterInfo, api: ApiClient, namespace: str
) -> None:
    """proxy-init as injection writes it (root, real iptables); the app as the proxy's user."""
    init = {
        "name": mesh.INIT_CONTAINER,
        "image": f"{mesh.PROXY_IMAGE}:{mesh.PROXY_VERSION}",
        "command": ["python", "-m", "weft_proxy.init"],
        "args": [
            "apply",
            f"--proxy-uid={mesh.PROXY_UID}",
            f"--skip-inbound-ports={mesh.PROXY_ADMIN_PORT}",
        ],
        "securityContext": {"runAsUser": 0},
    }
    whoami = python(
        "app", "import os, time; print(os.getuid(), flush=True); time.sleep(600)",
        securityContext={"runAsUser": mesh.PROXY_UID, "runAsNonRoot": True},
    )  # fmt: skip
    root_rules = await _iptables(None)
    await create(api, namespace, pod("meshed", whoami, initContainers=[init]))
    found = await until_ready(api, namespace, "meshed")
    netns = netns_of(cluster, found)
    rules = await _iptables(netns)
    assert "-j WEFT_OUTBOUND" in rules
    assert f"--uid-owner {mesh.PROXY_UID}" in rules
    # Interception first, then the ClusterIPs' translation (what the proxy itself dials).
    jumps = [line.split()[-1] for line in rules.splitlines() if line.startswith("-A OUTPUT -m")]
    assert jumps[-2:] == ["WEFT_OUTBOUND", "WEFT-SERVICES"]
    # What no rule takes (a ClusterIP without endpoints) may not leave the pod.
    assert "-A OUTPUT -d 10.96.0.0/16" in rules
    assert "-j REJECT" in rules
    assert await _iptables(None) == root_rules  # the machine's own rules: untouched
    log = locate.container_log(
        Path(cluster.state_dir), namespace, "meshed", found["metadata"]["uid"], "app"
    )

    async def printed() -> list[str] | None:  # Ready says it started, not that it printed
        words = log.read_text().split() if log.exists() else []
        return words or None

    assert await eventually(printed, "the app's first line", within=20) == [str(mesh.PROXY_UID)]


async def _iptables(netns: str | None) -> str:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    process = await asyncio.create_subprocess_exec(
        *prefix, "iptables-save", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    return "\n".join(line for line in out.decode().splitlines() if not line.startswith("#"))


async def test_an_unknown_image_is_err_image_pull(api: ApiClient, namespace: str) -> None:
    await create(api, namespace, pod("unknown", {"name": "app", "image": "nginx:1.27"}))

    async def pull_error() -> dict[str, Any] | None:
        found = await read(api, namespace, "unknown")
        statuses = (found.get("status") or {}).get("containerStatuses") or [{}]
        waiting = (statuses[0].get("state") or {}).get("waiting") or {}
        return waiting if waiting.get("reason") == "ErrImagePull" else None

    waiting = await eventually(pull_error, "ErrImagePull")
    assert 'Failed to pull image "nginx:1.27"' in waiting["message"]


async def test_deleting_a_pod_honours_its_grace_then_removes_processes_and_namespace(
    cluster: ClusterInfo, api: ApiClient, namespace: str, tmp_path: Path
) -> None:
    ignoring = tmp_path / "ignoring-sigterm"  # made once the process ignores SIGTERM
    stubborn = python(
        "stubborn",
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"open({str(ignoring)!r}, 'w').close()\ntime.sleep(600)",
    )
    await create(api, namespace, pod("stubborn", stubborn))
    found = await until_ready(api, namespace, "stubborn")

    async def ignores_sigterm() -> bool:  # (a loaded machine may start Python slowly)
        return ignoring.exists()

    await eventually(ignores_sigterm, "the process to ignore SIGTERM", within=60)
    netns = netns_of(cluster, found)
    pids = processes_of(netns)
    assert pids
    started = time.monotonic()
    await client.CoreV1Api(api).delete_namespaced_pod("stubborn", namespace)

    async def deleted() -> bool:
        try:
            await read(api, namespace, "stubborn")
        except ApiException as error:
            return error.status == 404
        return False

    await eventually(deleted, "the pod to be deleted for good", within=30)
    assert time.monotonic() - started >= 1.5  # SIGTERM ignored: SIGKILL after the 2 s grace
    assert netns not in await namespaces_on_machine()
    assert still_running(pids) == []
    assert not (Path("/etc/netns") / netns).exists()


async def test_a_process_on_the_node_is_reachable_from_pods_by_a_service_name(
    cluster: ClusterInfo, api: ApiClient, namespace: str
) -> None:
    """How the control plane, running as processes of the cluster, serves pods: it listens
    on the node's bridge address, named by a headless Service with a hand-made slice."""
    gateway = locate.node_network(Path(cluster.state_dir)).gateway

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, gateway, 0)
    port = server.sockets[0].getsockname()[1]
    core = client.CoreV1Api(api)
    service = {
        "metadata": {"name": "control"},
        "spec": {"clusterIP": "None", "ports": [{"port": port}]},
    }
    await core.create_namespaced_service(namespace, service)
    endpoint_slice = {
        "metadata": {"name": "control-node", "labels": {"kubernetes.io/service-name": "control"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [gateway]}],
        "ports": [{"port": port}],
    }
    await client.DiscoveryV1Api(api).create_namespaced_endpoint_slice(namespace, endpoint_slice)
    await create(api, namespace, pod("caller", python("idle", "import time; time.sleep(600)")))
    netns = netns_of(cluster, await until_ready(api, namespace, "caller"))
    url = f"http://control.{namespace}.svc.cluster.local:{port}/"
    try:

        async def reached() -> bool:
            return await run_in(netns, CONNECT.format(url=url)) == "200"

        await eventually(reached, f"{url} from a pod", within=20)
    finally:
        server.close()
