"""`weft check`'s verdicts, pure: what the API server showed in, pass / warn / fail and
the hint a user reads out. The time is given, so freshness and expiry are exact."""

from __future__ import annotations

import base64
import datetime
from typing import Any

from weft_api.mesh_ca import new_issuer, new_trust_anchor
from weft_cli.check import verdicts
from weft_cli.check.model import Status
from weft_cli.observe.pods import PodInfo
from weft_cli.webhook_probes import PROBES, DryRun

NOW = datetime.datetime(2026, 11, 21, 12, 0, tzinfo=datetime.UTC)


def lease(renewed_seconds_ago: float, holder: str = "weft-operator-7f9-abcde") -> dict[str, Any]:
    renewed = NOW - datetime.timedelta(seconds=renewed_seconds_ago)
    return {
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 15,
            "renewTime": renewed.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        }
    }


def deployment(replicas: int, ready: int) -> dict[str, Any]:
    return {"spec": {"replicas": replicas}, "status": {"readyReplicas": ready}}


def test_a_fresh_lease_means_the_operator_runs() -> None:
    outcome = verdicts.operator_running("weft", lease(3), deployment(1, 1), NOW)
    assert outcome.status is Status.PASS
    assert outcome.detail == "leader weft-operator-7f9-abcde, renewed 3s ago; Deployment 1/1 ready"
    local = verdicts.operator_running("weft", lease(1, "laptop-4242"), None, NOW)
    assert "outside the cluster" in local.detail


def test_a_lapsed_lease_says_no_operator_runs_and_where_to_look() -> None:
    outcome = verdicts.operator_running("weft", lease(40), deployment(1, 0), NOW)
    assert outcome.status is Status.FAIL
    assert "last renewed 40s ago by weft-operator-7f9-abcde (it lapses after 15s)" in outcome.detail
    assert "kubectl -n weft logs deploy/weft-operator" in outcome.hint


def test_an_operator_scaled_to_zero_is_named_with_the_fix() -> None:
    outcome = verdicts.operator_running("weft", lease(40), deployment(0, 0), NOW)
    assert outcome.status is Status.FAIL
    assert outcome.detail == "the Deployment weft/weft-operator is scaled to 0"
    assert outcome.hint.endswith("kubectl -n weft scale deployment weft-operator --replicas=1")


def test_times_since_read_at_a_glance() -> None:
    assert [verdicts.ago(s) for s in (-1, 45, 119, 1689, 7200, 90000, 400000)] == [
        "0s",
        "45s",
        "119s",
        "28m",
        "2h",
        "25h",
        "4d",
    ]


def test_no_lease_at_all() -> None:
    outcome = verdicts.operator_running("weft", None, None, NOW)
    assert outcome.detail == "no operator holds the Lease weft/weft-operator"
    assert "weft install" in outcome.hint


def test_kubernetes_versions() -> None:
    assert (
        verdicts.kubernetes_version({"major": "1", "minor": "36", "gitVersion": "v1.36.3"}).status
        is Status.PASS
    )
    old = verdicts.kubernetes_version({"major": "1", "minor": "27+", "gitVersion": "v1.27.9-gke.1"})
    assert old.status is Status.FAIL
    assert "older than 1.29" in old.detail
    assert verdicts.kubernetes_version({"gitVersion": "dev"}).status is Status.WARN


def crd(name: str, served: list[str], storage: str, established: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "versions": [
                {"name": v, "served": v in served, "storage": v == storage} for v in served
            ],
        },
        "status": {
            "conditions": [{"type": "Established", "status": "True" if established else "False"}]
        },
    }


def test_crds_missing_or_at_other_versions() -> None:
    shipped = [crd("trafficsplits.split.smi-spec.io", ["v1alpha1", "v1alpha4"], "v1alpha4")]
    missing = verdicts.crds_installed(shipped, {"trafficsplits.split.smi-spec.io": None})
    assert missing.status is Status.FAIL
    assert missing.hint == "install them: weft install --crds | kubectl apply -f -"
    linkerd_smi = {
        "trafficsplits.split.smi-spec.io": crd(
            "trafficsplits.split.smi-spec.io", ["v1alpha1"], "v1alpha1"
        )
    }
    outcome = verdicts.crd_versions(shipped, linkerd_smi)
    assert outcome.status is Status.FAIL
    assert "does not serve v1alpha4" in outcome.detail
    assert "stores v1alpha1, not v1alpha4" in outcome.detail
    assert (
        verdicts.crd_versions(shipped, {c["metadata"]["name"]: c for c in shipped}).status
        is Status.PASS
    )


def bundle(days: int) -> str:
    anchor = new_trust_anchor(
        "webhooks", NOW - datetime.timedelta(days=3650) + datetime.timedelta(days=days)
    )
    return base64.b64encode(anchor.cert_pem()).decode()


def configuration(ca_bundle: str | None) -> dict[str, Any]:
    client = {"service": {"name": "weft-webhooks"}}
    if ca_bundle is not None:
        client["caBundle"] = ca_bundle
    return {
        "metadata": {"name": "weft-validator"},
        "webhooks": [{"name": "validate.weft.dev", "clientConfig": client}],
    }


def test_webhook_ca_bundles_must_be_there_and_current() -> None:
    assert (
        verdicts.webhook_ca_bundles("weft", [configuration(bundle(300))], [], NOW).status
        is Status.PASS
    )
    missing = verdicts.webhook_ca_bundles("weft", [configuration(None)], [], NOW)
    assert missing.detail == "weft-validator/validate.weft.dev has no valid caBundle"
    assert "kubectl -n weft logs deploy/weft-webhooks" in missing.hint
    expired = verdicts.webhook_ca_bundles("weft", [configuration(bundle(-1))], [], NOW)
    assert "every CA in its caBundle has expired" in expired.detail


def test_a_converting_crd_needs_a_bundle_too() -> None:
    converting = {
        "metadata": {"name": "trafficsplits.split.smi-spec.io"},
        "spec": {
            "conversion": {"strategy": "Webhook", "webhook": {"clientConfig": {"service": {}}}}
        },
    }
    outcome = verdicts.webhook_ca_bundles("weft", [configuration(bundle(300))], [converting], NOW)
    assert outcome.detail == "crd/trafficsplits.split.smi-spec.io has no valid caBundle"


def test_a_webhook_the_api_server_did_not_call() -> None:
    injection, validation, _ = PROBES
    refused = DryRun(
        None,
        'Internal error occurred: failed calling webhook "validate.weft.dev": connection refused',
    )
    outcome = verdicts.webhook_called(validation, refused, "weft")
    assert outcome.status is Status.FAIL
    assert "connection refused" in outcome.detail
    assert (
        verdicts.webhook_called(validation, DryRun(None, "every weight is 0"), "weft").status
        is Status.PASS
    )
    not_injected = DryRun({"spec": {"containers": [{"name": "probe"}]}})
    assert verdicts.webhook_called(injection, not_injected, "weft").status is Status.FAIL


def identity(anchor_age_days: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    created = NOW - datetime.timedelta(days=anchor_age_days)
    anchor = new_trust_anchor("cluster.local", created)
    issuer = new_issuer(anchor, "cluster.local", created)
    config_map = {"data": {"ca-bundle.crt": anchor.cert_pem().decode()}}
    secret = {"data": {"tls.crt": base64.b64encode(issuer.cert_pem()).decode()}}
    return config_map, secret


def test_trust_anchors_and_issuer_expiry() -> None:
    roots, secret = identity()
    assert verdicts.trust_anchors(roots, "ca-bundle.crt", NOW).status is Status.PASS
    assert verdicts.issuer(secret, roots["data"]["ca-bundle.crt"], NOW).status is Status.PASS
    old_roots, old_secret = identity(anchor_age_days=3650 - 30)  # the anchor has 30 days left
    soon = verdicts.trust_anchors(old_roots, "ca-bundle.crt", NOW)
    assert soon.status is Status.WARN
    assert soon.detail == "a trust anchor expires in 30 days (2026-12-21)"
    expired = verdicts.issuer(old_secret, old_roots["data"]["ca-bundle.crt"], NOW)
    assert expired.status is Status.FAIL  # the issuer lived one year of the anchor's ten
    assert verdicts.trust_anchors(None, "ca-bundle.crt", NOW).status is Status.FAIL


def test_an_issuer_from_another_anchor_is_caught() -> None:
    roots, _ = identity()
    _, other_secret = identity()
    outcome = verdicts.issuer(other_secret, roots["data"]["ca-bundle.crt"], NOW)
    assert outcome.status is Status.FAIL
    assert "not signed by the trust anchors" in outcome.detail


def resource(name: str, conditions: list[dict[str, Any]], generation: int = 2) -> dict[str, Any]:
    return {
        "kind": "TrafficSplit",
        "metadata": {"namespace": "shop", "name": name, "generation": generation},
        "status": {"conditions": conditions},
    }


def condition(
    kind: str, status: str = "True", generation: int = 2, message: str = ""
) -> dict[str, Any]:
    return {"type": kind, "status": status, "observedGeneration": generation, "message": message}


def test_convergence_lists_what_is_not_ready_or_programmed() -> None:
    good = resource("web", [condition("Ready"), condition("Programmed")])
    assert verdicts.converged([good]).detail == "1 resources Ready; 1 programmed on every proxy"
    assert verdicts.converged([]).detail == "no Weft resources"
    broken = resource(
        "books",
        [condition("Ready", "False", message="references not found: Service shop/books-canary")],
    )
    stale = resource("authors", [condition("Ready", generation=1)])
    pending = resource("new", [], generation=1)
    waiting = resource(
        "api", [condition("Ready"), condition("Programmed", "False", message="2/3 proxies")]
    )
    outcome = verdicts.converged([good, broken, stale, pending, waiting])
    assert outcome.status is Status.FAIL
    assert outcome.detail == (
        "trafficsplit shop/books: Ready is False: references not found: Service shop/books-canary; "
        "trafficsplit shop/authors: Ready describes generation 1, not 2; "
        "trafficsplit shop/new: no status yet: the operator has not processed it; "
        "trafficsplit shop/api: Programmed is False: 2/3 proxies"
    )


def test_proxies_versions_and_readiness() -> None:
    current = PodInfo("shop", "web-0", proxy_version="0.1.0", phase="Running", proxy_ready=True)
    old = PodInfo("shop", "web-1", proxy_version="0.0.9", phase="Running", proxy_ready=True)
    pending = PodInfo("shop", "web-2", proxy_version="0.1.0", phase="Pending")
    plain = PodInfo("shop", "db-0")
    assert verdicts.proxies_found([plain], "namespace shop").status is Status.WARN
    assert (
        verdicts.proxies_found([current, plain], "namespace shop").detail
        == "1 of 2 pods in namespace shop"
    )
    versions = verdicts.proxy_versions([current, old], "0.1.0")
    assert (versions.status, versions.detail) == (Status.WARN, "not at 0.1.0: shop/web-1 (0.0.9)")
    ready = verdicts.proxies_ready([current, pending, plain])
    assert (ready.status, ready.detail) == (Status.FAIL, "proxy not ready: shop/web-2 (Pending)")


def test_an_unready_proxy_names_the_control_plane_service_it_cannot_reach() -> None:
    log = (
        "2025-01-01 10:00:00,000 INFO weft_proxy.main: proxy shop/web-2 listening\n"
        "2025-01-01 10:00:01,000 WARNING weft_proxy.identity.certifier: certify failed "
        "(retry in 1s): failed to connect to all addresses; last error: UNKNOWN: "
        "ipv4:10.96.4.2:8080: Connection refused\n"
        "2025-01-01 10:00:02,000 INFO weft_proxy.config_client.client: config stream to "
        "weft-config.weft.svc.cluster.local:8086 ended: failed to connect to all addresses; "
        "last error: UNKNOWN: ipv4:10.96.91.90:8086: Connection refused\n"
    )
    cause = verdicts.proxy_cause(log)
    assert cause is not None
    assert cause.startswith("cannot reach weft-config at 10.96.91.90:8086 (connection refused): ")
    identity_only = "\n".join(log.splitlines()[:2])
    assert verdicts.proxy_cause(identity_only) == (
        "cannot reach weft-identity at 10.96.4.2:8080 (connection refused): failed to connect "
        "to all addresses; last error: UNKNOWN: ipv4:10.96.4.2:8080: Connection refused"
    )
    assert verdicts.proxy_cause("WARNING x: config stream to a:8086 ended: Socket closed") == (
        "cannot reach weft-config at a:8086: Socket closed"
    )
    assert verdicts.proxy_cause("INFO proxy listening") is None
    pending = PodInfo("shop", "web-2", proxy_version="0.1.0", phase="Running")
    ready = verdicts.proxies_ready([pending], {"shop/web-2": cause})
    assert ready.status is Status.FAIL
    assert ready.detail.startswith(
        "proxy not ready: shop/web-2 (Running); proxy of pod shop/web-2 cannot reach "
        "weft-config at 10.96.91.90:8086 (connection refused): "
    )
    assert "kube-proxy" in (ready.hint or "")
