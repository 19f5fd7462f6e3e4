"""Pure verdicts of `weft check`: what the API server showed in, an outcome with a hint
out. The time is a parameter, so expiry and Lease freshness are tested exactly."""

from __future__ import annotations

import base64
import datetime
import re
from collections.abc import Mapping, Sequence
from typing import Any

from weft_cli import certificates
from weft_cli.check.model import Outcome, failed, passed, warned
from weft_cli.observe.pods import PodInfo
from weft_cli.webhook_probes import DryRun, Probe

MIN_KUBERNETES = (1, 29)  # native sidecars (restartPolicy Always on init containers)
CERTIFICATE_WARNING = datetime.timedelta(days=60)
SHOWN = 5  # problems listed by name; the rest are counted

HINT_CRDS = "install them: weft install --crds | kubectl apply -f -"
HINT_INSTALL = "install Weft: weft install | kubectl apply -f -"

Object = Mapping[str, Any]


def _listed(problems: Sequence[str]) -> str:
    shown = "; ".join(problems[:SHOWN])
    more = len(problems) - SHOWN
    return f"{shown}; and {more} more" if more > 0 else shown


# --- the Kubernetes API --------------------------------------------------------------------


def kubernetes_version(version: Object) -> Outcome:
    git_version = str(version.get("gitVersion", "?"))
    numbers = [re.match(r"\d+", str(version.get(key, ""))) for key in ("major", "minor")]
    if not all(numbers):
        return warned(f"cannot tell the version from {git_version!r}")
    found = tuple(int(match.group()) for match in numbers if match)
    oldest = ".".join(map(str, MIN_KUBERNETES))
    if found < MIN_KUBERNETES:
        return failed(
            f"{git_version} is older than {oldest}, the oldest Weft supports (native sidecars)",
            "upgrade the cluster",
        )
    return passed(git_version)


def permissions(allowed: Mapping[str, bool]) -> Outcome:
    """`allowed`: "create namespaces" -> whether a SelfSubjectAccessReview allowed it."""
    denied = [action for action, ok in allowed.items() if not ok]
    if denied:
        return failed(f"not allowed to {_listed(denied)}", "install as a cluster administrator")
    return passed(f"{len(allowed)} kinds of objects")


def namespace_free(namespace: str, existing: Object | None) -> Outcome:
    if existing is not None:
        return failed(
            f"namespace {namespace} already exists",
            "check an installed Weft with `weft check`, or pick another with --weft-namespace",
        )
    return passed(namespace)


# --- CRDs ----------------------------------------------------------------------------------


def _versions(crd: Object) -> tuple[set[str], str]:
    versions = crd["spec"]["versions"]
    served = {v["name"] for v in versions if v.get("served")}
    storage = next((v["name"] for v in versions if v.get("storage")), "")
    return served, storage


def _established(crd: Object) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def crds_installed(shipped: Sequence[Object], installed: Mapping[str, Object | None]) -> Outcome:
    missing = [
        crd["metadata"]["name"] for crd in shipped if installed.get(crd["metadata"]["name"]) is None
    ]
    if missing:
        return failed(f"missing: {_listed(missing)}", HINT_CRDS)
    pending = [name for name, crd in installed.items() if crd is not None and not _established(crd)]
    if pending:
        return failed(f"not established yet: {_listed(pending)}", "wait a moment, then check again")
    return passed(f"{len(shipped)} CRDs")


def crd_versions(shipped: Sequence[Object], installed: Mapping[str, Object | None]) -> Outcome:
    problems = []
    for crd in shipped:
        name = crd["metadata"]["name"]
        found = installed.get(name)
        if found is None:
            continue  # crds_installed says so
        (want_served, want_storage), (served, storage) = _versions(crd), _versions(found)
        if not want_served <= served:
            lacking = ", ".join(sorted(want_served - served))
            problems.append(f"{name} does not serve {lacking}")
        if storage != want_storage:
            problems.append(f"{name} stores {storage}, not {want_storage}")
    if problems:
        return failed(_listed(problems), f"upgrade them: {HINT_CRDS.split(': ', 1)[1]}")
    return passed("every version served, storage versions as shipped")


# --- the operator --------------------------------------------------------------------------


def _timestamp(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def ago(seconds: float) -> str:
    """`45s`, `28m`, `5h`, `3d`: how long since, at a glance."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size:.0f}{unit}"
    return f"{max(seconds, 0):.0f}s"


def _operator_hint(namespace: str, deployment: Object | None) -> str:
    if deployment is None:
        return f"{HINT_INSTALL}, or run it on the local cluster: weft demo"
    return (
        f"see its pods and logs: kubectl -n {namespace} get pods "
        f"-l app.kubernetes.io/name=weft-operator; kubectl -n {namespace} logs deploy/weft-operator"
    )


def operator_running(
    namespace: str,
    lease: Object | None,
    deployment: Object | None,
    now: datetime.datetime,
) -> Outcome:
    """The leader's Lease, renewed within its duration, says an operator is working; the
    Deployment, when there is one, says why not."""
    if deployment is not None and deployment["spec"].get("replicas", 1) == 0:
        return failed(
            f"the Deployment {namespace}/weft-operator is scaled to 0",
            f"scale it up: kubectl -n {namespace} scale deployment weft-operator --replicas=1",
        )
    spec = (lease or {}).get("spec") or {}
    holder, renewed = spec.get("holderIdentity"), spec.get("renewTime")
    if not holder or not renewed:
        return failed(
            f"no operator holds the Lease {namespace}/weft-operator",
            _operator_hint(namespace, deployment),
        )
    duration = int(spec.get("leaseDurationSeconds") or 15)
    age = (now - _timestamp(renewed)).total_seconds()
    if age > duration:
        return failed(
            f"the Lease {namespace}/weft-operator was last renewed {ago(age)} ago by {holder} "
            f"(it lapses after {duration}s): no operator is running",
            _operator_hint(namespace, deployment),
        )
    where = "outside the cluster (no Deployment)"
    if deployment is not None:
        status = deployment.get("status") or {}
        ready, wanted = status.get("readyReplicas", 0), deployment["spec"].get("replicas", 1)
        where = f"Deployment {ready}/{wanted} ready"
    return passed(f"leader {holder}, renewed {ago(age)} ago; {where}")


# --- webhooks ------------------------------------------------------------------------------


def webhooks_registered(configurations: Mapping[str, Object | None]) -> Outcome:
    missing = [name for name, found in configurations.items() if found is None]
    if missing:
        return failed(f"missing: {', '.join(missing)}", HINT_INSTALL)
    return passed(", ".join(configurations))


def _bundles(configurations: Sequence[Object], crds: Sequence[Object]) -> dict[str, str]:
    """Where a caBundle must be -> the bundle found there ("" when none)."""
    bundles = {}
    for configuration in configurations:
        for webhook in configuration.get("webhooks") or ():
            where = f"{configuration['metadata']['name']}/{webhook['name']}"
            bundles[where] = (webhook.get("clientConfig") or {}).get("caBundle", "")
    for crd in crds:
        conversion = crd["spec"].get("conversion") or {}
        if conversion.get("strategy") == "Webhook":
            client = (conversion.get("webhook") or {}).get("clientConfig") or {}
            bundles[f"crd/{crd['metadata']['name']}"] = client.get("caBundle", "")
    return bundles


def webhook_ca_bundles(
    namespace: str,
    configurations: Sequence[Object],
    crds: Sequence[Object],
    now: datetime.datetime,
) -> Outcome:
    problems, expiries = [], []
    for where, bundle in _bundles(configurations, crds).items():
        try:
            found = certificates.load(base64.b64decode(bundle)) if bundle else []
        except ValueError:
            found = []
        if not found:
            problems.append(f"{where} has no valid caBundle")
        elif all(certificates.time_left(cert, now).total_seconds() <= 0 for cert in found):
            problems.append(f"{where}: every CA in its caBundle has expired")
        else:
            expiries.append(max(cert.not_valid_after_utc for cert in found))
    if problems:
        return failed(
            _listed(problems),
            f"the webhooks publish their CA once they run: kubectl -n {namespace} logs "
            "deploy/weft-webhooks",
        )
    if not expiries:
        return failed("no webhook holds a caBundle", HINT_INSTALL)
    return passed(f"CA valid until {min(expiries):%Y-%m-%d}")


def webhook_called(probe: Probe, outcome: DryRun, namespace: str) -> Outcome:
    if probe.called(outcome):
        return passed()
    said = outcome.refusal.strip().splitlines()[0] if outcome.refusal.strip() else ""
    detail = f"a dry-run create did not go through the {probe.webhook} webhook"
    return failed(
        f"{detail}: {said}" if said else detail,
        f"is it running? kubectl -n {namespace} get pods -l app.kubernetes.io/name=weft-webhooks",
    )


# --- identity ------------------------------------------------------------------------------


def _validity(what: str, certs: Sequence[Any], now: datetime.datetime, hint: str) -> Outcome:
    soonest = min(certs, key=lambda cert: cert.not_valid_after_utc)
    left = certificates.time_left(soonest, now)
    if left.total_seconds() <= 0:
        return failed(f"{what} expired on {certificates.day(soonest)}", hint)
    if left < CERTIFICATE_WARNING:
        return warned(f"{what} expires in {left.days} days ({certificates.day(soonest)})", hint)
    return passed(f"valid until {certificates.day(soonest)}")


def trust_anchors(config_map: Object | None, key: str, now: datetime.datetime) -> Outcome:
    if config_map is None:
        return failed("no trust anchors ConfigMap", f"{HINT_INSTALL} (it generates them)")
    anchors = certificates.load((config_map.get("data") or {}).get(key, ""))
    if not anchors:
        return failed(f"the trust anchors ConfigMap holds no certificate under {key}", HINT_INSTALL)
    return _validity("a trust anchor", anchors, now, "rotate the trust anchor and the issuer")


def issuer(secret: Object | None, anchors_pem: str, now: datetime.datetime) -> Outcome:
    if secret is None:
        return failed("no issuer Secret", f"{HINT_INSTALL} (it generates one)")
    try:
        found = certificates.load(base64.b64decode((secret.get("data") or {}).get("tls.crt", "")))
    except ValueError:
        found = []
    if not found:
        return failed("the issuer Secret holds no tls.crt", HINT_INSTALL)
    anchors = certificates.load(anchors_pem)
    if anchors and not certificates.signed_by_one_of(found[0], anchors):
        return failed(
            "the issuer is not signed by the trust anchors: proxies would reject every "
            "certificate it issues",
            "give an issuer signed by the anchors (weft install --set-file identity.*)",
        )
    return _validity("the issuer certificate", found[:1], now, "rotate the issuer")


# --- configuration converged ---------------------------------------------------------------


def _conditions(obj: Object) -> dict[str, Object]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or ()}


def _problem(obj: Object) -> str | None:
    conditions = _conditions(obj)
    if not conditions:
        return "no status yet: the operator has not processed it"
    generation = obj["metadata"].get("generation", 0)
    for kind in ("Ready", "Programmed"):
        condition = conditions.get(kind)
        if condition is None:
            continue
        if condition.get("observedGeneration", generation) < generation:
            return (
                f"{kind} describes generation {condition['observedGeneration']}, not {generation}"
            )
        if condition["status"] != "True":
            return f"{kind} is {condition['status']}: {condition.get('message', '')}".rstrip(": ")
    return None if "Ready" in conditions else "no Ready condition"


def converged(objects: Sequence[Object]) -> Outcome:
    problems = []
    programmed = 0
    for obj in objects:
        problem = _problem(obj)
        kind, meta = obj["kind"].lower(), obj["metadata"]
        if problem:
            problems.append(f"{kind} {meta['namespace']}/{meta['name']}: {problem}")
        elif "Programmed" in _conditions(obj):
            programmed += 1
    if problems:
        return failed(
            _listed(problems),
            "kubectl describe the resource: its conditions and Events say what is missing",
        )
    if not objects:
        return passed("no Weft resources")
    proxies = f"; {programmed} programmed on every proxy" if programmed else ""
    return passed(f"{len(objects)} resources Ready{proxies}")


# --- the data plane ------------------------------------------------------------------------


def proxies_found(pods: Sequence[PodInfo], scope: str) -> Outcome:
    meshed = [pod for pod in pods if pod.meshed]
    if not meshed:
        return warned(
            f"no meshed pods in {scope}",
            "annotate a namespace (kubectl annotate ns NAME weft.dev/inject=enabled) and "
            "restart its workloads",
        )
    return passed(f"{len(meshed)} of {len(pods)} pods in {scope}")


def proxy_versions(pods: Sequence[PodInfo], expected: str) -> Outcome:
    other = [
        f"{pod.ref} ({pod.proxy_version})"
        for pod in pods
        if pod.meshed and pod.proxy_version != expected
    ]
    if other:
        return warned(
            f"not at {expected}: {_listed(other)}",
            "restart their workloads to get the current proxy: kubectl rollout restart ...",
        )
    return passed(f"all at {expected}")


_CONFIG_ENDED = re.compile(r"config stream to (?P<address>\S+) ended: (?P<reason>.*)")
_CERTIFY_FAILED = re.compile(r"certify failed \(retry in [^)]*\): (?P<reason>.*)")
_DIALLED = re.compile(r"ipv4:(?P<address>[\d.]+:\d+): (?P<error>[^;\"]+)")


def proxy_cause(log: str) -> str | None:
    """Why a proxy cannot reach the control plane, from the newest such line of its log:
    `cannot reach weft-config at 10.96.91.90:8086 (connection refused)`."""
    for line in reversed(log.splitlines()):
        for pattern, service in (
            (_CONFIG_ENDED, "weft-config"),
            (_CERTIFY_FAILED, "weft-identity"),
        ):
            found = pattern.search(line)
            if found is None:
                continue
            reason = found["reason"].strip()
            dialled = _DIALLED.search(reason)
            if dialled is not None:
                error = dialled["error"].strip().lower()
                return f"cannot reach {service} at {dialled['address']} ({error}): {reason}"
            address = found.groupdict().get("address")
            where = f" at {address}" if address else ""
            return f"cannot reach {service}{where}: {reason}"
    return None


def proxies_ready(pods: Sequence[PodInfo], causes: Mapping[str, str] | None = None) -> Outcome:
    """`causes`: pod ref -> why its proxy cannot reach the control plane (proxy_cause)."""
    causes = causes or {}
    unready = [
        f"{pod.ref} ({pod.phase or 'unknown'})"
        for pod in pods
        if pod.meshed and not pod.proxy_ready
    ]
    if unready:
        named = [f"proxy of pod {ref} {cause}" for ref, cause in causes.items()]
        if named:
            return failed(
                f"proxy not ready: {_listed(unready)}; {_listed(named)}",
                "the pods cannot reach the control plane's Services: check their endpoints "
                "(kubectl get endpointslices -n NAMESPACE) and that ClusterIPs are routed "
                "(kube-proxy or a CNI that replaces it)",
            )
        return failed(
            f"proxy not ready: {_listed(unready)}",
            "kubectl describe pod NAME; kubectl logs NAME -c weft-proxy",
        )
    return passed()
