"""The reads behind `weft check`, category by category; the verdicts are pure.

Results are yielded as they are known, so a terminal shows progress. A check whose
read fails (forbidden, say) fails with that reason; the others still run.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import yaml

from weft_api import mesh
from weft_api.mesh import ISSUER_SECRET, TRUST_ROOTS, TRUST_ROOTS_KEY
from weft_cli import manifests, webhook_probes
from weft_cli.check import verdicts
from weft_cli.check.model import Outcome, Result, Status, failed, passed
from weft_cli.errors import CliError
from weft_cli.kube import Kube, NotFound
from weft_cli.observe import pods as pod_info
from weft_resources.kinds import WATCHED
from weft_webhooks.endpoints import MUTATING_CONFIGURATION, VALIDATING_CONFIGURATION

API = "kubernetes-api"
PRE = "pre-install"
CRDS = "weft-crds"
CONTROL_PLANE = "weft-control-plane"
WEBHOOKS = "weft-webhooks"
IDENTITY = "weft-identity"
CONFIG = "weft-config"
DATA_PLANE = "weft-data-plane"

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
REGISTRATION = "/apis/admissionregistration.k8s.io/v1"
OPERATOR = "weft-operator"
PROXY_LOG_LINES = 200
PROXY_LOG_WITHIN = 5.0

Clock = Callable[[], datetime.datetime]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class CheckRequest:
    weft_namespace: str
    namespace: str | None = None  # scope of the config and data-plane checks; None: all
    pre: bool = False
    proxy: bool = False


async def _outcome(compute: Callable[[], Awaitable[Outcome]]) -> Outcome:
    try:
        return await compute()
    except CliError as error:
        return failed(str(error))


def _scoped(path: str, namespace: str | None) -> str:
    """`/apis/g/v` + `/namespaces/ns` when scoped."""
    return f"{path}/namespaces/{namespace}" if namespace else path


def shipped_crds() -> list[dict[str, Any]]:
    return [
        document
        for path in manifests.crd_files()
        for document in yaml.safe_load_all(path.read_text())
        if document and document.get("kind") == "CustomResourceDefinition"
    ]


async def run_checks(
    kube: Kube, request: CheckRequest, now: Clock = utc_now
) -> AsyncIterator[Result]:
    try:
        version = await kube.get("/version")
    except CliError as error:
        hint = "is the cluster up (weft cluster status, for the local one)? is KUBECONFIG right?"
        yield Result(API, "can reach the Kubernetes API", failed(str(error), hint))
        return
    yield Result(API, "can reach the Kubernetes API", passed(kube.server))
    yield Result(API, "Kubernetes version is supported", verdicts.kubernetes_version(version))
    if request.pre:
        async for result in _pre_install(kube, request):
            yield result
        return
    crds: dict[str, dict[str, Any] | None] = {}
    async for result in _crds(kube, crds):
        yield result
    namespace = await kube.get_or_none(f"/api/v1/namespaces/{request.weft_namespace}")
    if namespace is None:
        missing = failed(
            f"namespace {request.weft_namespace} does not exist", verdicts.HINT_INSTALL
        )
        yield Result(CONTROL_PLANE, "the control plane namespace exists", missing)
    else:
        yield Result(CONTROL_PLANE, "the control plane namespace exists", passed())
        yield Result(CONTROL_PLANE, "the operator is running", await _operator(kube, request, now))
    async for result in _webhooks(kube, request, crds, now):
        yield result
    if namespace is not None:  # else the identity lives nowhere
        async for result in _identity(kube, request, now):
            yield result
    yield Result(
        CONFIG, "Weft's resources are Ready and programmed", await _converged(kube, request)
    )
    if request.proxy:
        async for result in _data_plane(kube, request):
            yield result


# --- before installing ---------------------------------------------------------------------

_CLUSTER_KINDS = (
    ("", "namespaces"),
    ("apiextensions.k8s.io", "customresourcedefinitions"),
    ("rbac.authorization.k8s.io", "clusterroles"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"),
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
)
_NAMESPACED_KINDS = (
    ("", "serviceaccounts"),
    ("", "services"),
    ("", "secrets"),
    ("", "configmaps"),
    ("apps", "deployments"),
    ("rbac.authorization.k8s.io", "roles"),
    ("rbac.authorization.k8s.io", "rolebindings"),
    ("policy", "poddisruptionbudgets"),
)


async def _may_create(kube: Kube, group: str, resource: str, namespace: str | None) -> bool:
    attributes = {"verb": "create", "group": group, "resource": resource}
    if namespace:
        attributes["namespace"] = namespace
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }
    answer = await kube.call(
        "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=review
    )
    return bool((answer.get("status") or {}).get("allowed"))


async def _pre_install(kube: Kube, request: CheckRequest) -> AsyncIterator[Result]:
    namespace = request.weft_namespace

    async def namespace_free() -> Outcome:
        found = await kube.get_or_none(f"/api/v1/namespaces/{namespace}")
        return verdicts.namespace_free(namespace, found)

    async def permissions() -> Outcome:
        kinds: list[tuple[str, str, str | None]] = [(g, r, None) for g, r in _CLUSTER_KINDS]
        kinds += [(g, r, namespace) for g, r in _NAMESPACED_KINDS]
        allowed = {f"create {r}": await _may_create(kube, g, r, ns) for g, r, ns in kinds}
        return verdicts.permissions(allowed)

    yield Result(PRE, "the control plane namespace is free", await _outcome(namespace_free))
    yield Result(PRE, "can create Weft's objects", await _outcome(permissions))


# --- installed -----------------------------------------------------------------------------


async def _crds(kube: Kube, installed: dict[str, dict[str, Any] | None]) -> AsyncIterator[Result]:
    shipped = shipped_crds()

    async def read() -> Outcome:
        listed = {crd["metadata"]["name"]: crd for crd in await kube.items(CRD_PATH)}
        installed.update(
            {crd["metadata"]["name"]: listed.get(crd["metadata"]["name"]) for crd in shipped}
        )
        return verdicts.crds_installed(shipped, installed)

    yield Result(CRDS, "Weft's CRDs are installed", await _outcome(read))
    if any(installed.values()):
        versions = verdicts.crd_versions(shipped, installed)
        yield Result(CRDS, "they serve the versions Weft needs", versions)


async def _operator(kube: Kube, request: CheckRequest, now: Clock) -> Outcome:
    namespace = request.weft_namespace

    async def read() -> Outcome:
        lease = await kube.get_or_none(
            f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{OPERATOR}"
        )
        deployment = await kube.get_or_none(
            f"/apis/apps/v1/namespaces/{namespace}/deployments/{OPERATOR}"
        )
        return verdicts.operator_running(namespace, lease, deployment, now())

    return await _outcome(read)


async def api_dry_run(kube: Kube, probe: webhook_probes.Probe) -> webhook_probes.DryRun:
    status, body = await kube.request(
        "POST", probe.collection_path, query={"dryRun": "All"}, body=probe.manifest
    )
    try:
        answer = json.loads(body) if body else {}
    except ValueError:  # a proxy in the way answered text
        answer = {"message": body.decode(errors="replace")[:200]}
    if 200 <= status < 300:
        return webhook_probes.DryRun(answer)
    return webhook_probes.DryRun(None, str(answer.get("message") or f"HTTP {status}"))


async def _webhooks(
    kube: Kube,
    request: CheckRequest,
    crds: dict[str, dict[str, Any] | None],
    now: Clock,
) -> AsyncIterator[Result]:
    namespace = request.weft_namespace
    configurations = {
        MUTATING_CONFIGURATION: await kube.get_or_none(
            f"{REGISTRATION}/mutatingwebhookconfigurations/{MUTATING_CONFIGURATION}"
        ),
        VALIDATING_CONFIGURATION: await kube.get_or_none(
            f"{REGISTRATION}/validatingwebhookconfigurations/{VALIDATING_CONFIGURATION}"
        ),
    }
    registered = verdicts.webhooks_registered(configurations)
    yield Result(WEBHOOKS, "the webhooks are registered", registered)
    if registered.status is not Status.PASS:
        return
    present = [c for c in configurations.values() if c is not None]
    converted = [crd for crd in crds.values() if crd is not None]
    bundles = verdicts.webhook_ca_bundles(namespace, present, converted, now())
    yield Result(WEBHOOKS, "their CA bundles are present and valid", bundles)
    for probe in webhook_probes.PROBES:

        async def called(probe: webhook_probes.Probe = probe) -> Outcome:
            return verdicts.webhook_called(probe, await api_dry_run(kube, probe), namespace)

        title = f"the API server calls the {probe.webhook} webhook"
        yield Result(WEBHOOKS, title, await _outcome(called))


async def _identity(kube: Kube, request: CheckRequest, now: Clock) -> AsyncIterator[Result]:
    path = f"/api/v1/namespaces/{request.weft_namespace}"
    roots: dict[str, Any] | None = None

    async def anchors() -> Outcome:
        nonlocal roots
        roots = await kube.get_or_none(f"{path}/configmaps/{TRUST_ROOTS}")
        return verdicts.trust_anchors(roots, TRUST_ROOTS_KEY, now())

    async def issuer() -> Outcome:
        secret = await kube.get_or_none(f"{path}/secrets/{ISSUER_SECRET}")
        anchors_pem = ((roots or {}).get("data") or {}).get(TRUST_ROOTS_KEY, "")
        return verdicts.issuer(secret, anchors_pem, now())

    yield Result(IDENTITY, "the trust anchors are valid", await _outcome(anchors))
    yield Result(IDENTITY, "the issuer is valid and signed by them", await _outcome(issuer))


async def _converged(kube: Kube, request: CheckRequest) -> Outcome:
    async def read() -> Outcome:
        objects = []
        for watched in WATCHED:
            if not watched.reports_status:
                continue
            base = _scoped(f"/apis/{watched.group}/{watched.version}", request.namespace)
            try:
                listed = await kube.get(f"{base}/{watched.plural}")
            except NotFound:
                continue  # its CRD is missing: the CRD check says so
            kind = listed.get("kind", "").removesuffix("List")
            objects += [{**item, "kind": kind} for item in listed.get("items") or ()]
        return verdicts.converged(objects)

    return await _outcome(read)


async def _data_plane(kube: Kube, request: CheckRequest) -> AsyncIterator[Result]:
    scope = f"namespace {request.namespace}" if request.namespace else "the cluster"
    try:
        listed = await kube.items(_scoped("/api/v1", request.namespace) + "/pods")
    except CliError as error:
        yield Result(DATA_PLANE, "meshed pods", failed(str(error)))
        return
    pods = [pod_info.from_api(pod) for pod in listed]
    yield Result(DATA_PLANE, "meshed pods", verdicts.proxies_found(pods, scope))
    version = verdicts.proxy_versions(pods, mesh.PROXY_VERSION)
    yield Result(DATA_PLANE, "proxies run the current version", version)
    causes = await _proxy_causes(kube, pods)
    yield Result(DATA_PLANE, "proxies are ready", verdicts.proxies_ready(pods, causes))


async def _proxy_causes(kube: Kube, pods: list[pod_info.PodInfo]) -> dict[str, str]:
    """What the logs of (the first few) unready proxies say about the control plane."""
    causes = {}
    unready = [pod for pod in pods if pod.meshed and not pod.proxy_ready]
    for pod in unready[: verdicts.SHOWN]:
        path = f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}/log"
        query = {"container": mesh.PROXY_CONTAINER, "tailLines": str(PROXY_LOG_LINES)}
        try:
            log = await kube.get_text(path, within=PROXY_LOG_WITHIN, query=query)
        except CliError:
            continue  # no log to read (no kubelet API, say): the verdict says less
        cause = verdicts.proxy_cause(log)
        if cause is not None:
            causes[pod.ref] = cause
    return causes
