"""The HTTPS server in this process: reviews in, answers out; certificates swapped live."""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from weft_api import mesh
from weft_localcluster import ports
from weft_operator.models import Server
from weft_webhooks.certificates import Policy
from weft_webhooks.injection import InjectorSettings, inject
from weft_webhooks.serving.app import Lookups, Webhooks, make_app
from weft_webhooks.serving.tls import CertificateKeeper

POLICY = Policy(ips=(ports.HOST,), serving_lifetime=datetime.timedelta(hours=3))


class Clock:
    """Starts two thirds of a serving lifetime ago, so that renewing happens at the real
    time (a certificate issued in the future would not verify yet)."""

    def __init__(self) -> None:
        self.now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=2, minutes=1)

    def __call__(self) -> datetime.datetime:
        return self.now


class Published:
    def __init__(self) -> None:
        self.bundles: list[bytes] = []

    async def __call__(self, bundle: bytes) -> list[str]:
        self.bundles.append(bundle)
        return []


async def annotations_of(namespace: str) -> Mapping[str, str]:
    if namespace == "unreadable":
        raise RuntimeError("the API server is away")
    return {mesh.INJECT_ANNOTATION: mesh.INJECT_ENABLED}


async def no_servers(namespace: str) -> Sequence[Server]:
    raise RuntimeError("the API server is away")


ANCHORS = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
IN_A_CLUSTER = InjectorSettings(require_trust_anchors=True)


class Anchors:
    """What the webhook knows of the trust anchors: set by each test, and counted."""

    def __init__(self) -> None:
        self.pem: str | None = ANCHORS
        self.error: Exception | None = None
        self.reads = 0

    async def __call__(self) -> str | None:
        self.reads += 1
        if self.error is not None:
            raise self.error
        return self.pem


class Running:
    def __init__(self, keeper: CertificateKeeper, url: str, anchors: Anchors) -> None:
        self.keeper, self.url, self.anchors = keeper, url, anchors

    def client_tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.keeper.certificates.bundle.decode())

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url + path, json=body, ssl=self.client_tls()) as response,
        ):
            text = await response.text()
            return response.status, json.loads(text) if response.status == 200 else text

    async def served_serial(self) -> int:
        host, port = self.url.removeprefix("https://").split(":")
        _, writer = await asyncio.open_connection(host, int(port), ssl=self.client_tls())
        serial = int(writer.get_extra_info("peercert")["serialNumber"], 16)
        writer.close()
        await writer.wait_closed()
        return serial


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    clock, published = Clock(), Published()
    keeper = CertificateKeeper(POLICY, tmp_path, published, tmp_path / "ca.crt", clock)
    anchors = Anchors()
    lookups = Lookups(annotations_of, no_servers, anchors)
    app = make_app(Webhooks(IN_A_CLUSTER, "cluster.local", lookups))
    runner = web.AppRunner(app)
    await runner.setup()
    port = ports.pick_free()
    await web.TCPSite(runner, ports.HOST, port, ssl_context=keeper.context).start()
    yield Running(keeper, f"https://{ports.HOST}:{port}", anchors)
    await runner.cleanup()


def admission_review(obj: dict[str, Any], namespace: str = "shop") -> dict[str, Any]:
    request = {"uid": "4ba2", "operation": "CREATE", "namespace": namespace, "object": obj}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


POD = {"metadata": {"generateName": "web-"}, "spec": {"containers": [{"name": "a", "image": "b"}]}}


async def test_injection_answers_with_the_patch_of_the_pure_core(running: Running) -> None:
    status, review = await running.post("/inject", admission_review(POD))
    assert status == 200
    response = review["response"]
    assert response["uid"] == "4ba2"
    assert response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    expected = inject(
        {**POD, "metadata": {**POD["metadata"], "namespace": "shop"}},
        await annotations_of("shop"),
        InjectorSettings(require_trust_anchors=True, trust_anchors_pem=ANCHORS),
    )
    assert json.loads(base64.b64decode(response["patch"])) == list(expected.patch)


def patch_of(review: Any) -> list[dict[str, Any]]:
    patch: list[dict[str, Any]] = json.loads(base64.b64decode(review["response"]["patch"]))
    return patch


@pytest.mark.parametrize("missing", ["none published", "unreadable"])
async def test_without_trust_anchors_the_pod_is_admitted_unmeshed_with_the_reason(
    running: Running, missing: str
) -> None:
    running.anchors.pem = None
    if missing == "unreadable":
        running.anchors.error = RuntimeError("the API server is away")
    _, review = await running.post("/inject", admission_review(POD))
    assert review["response"]["allowed"] is True
    (operation,) = patch_of(review)
    assert operation["path"] == "/metadata/annotations"
    assert "trust anchors" in operation["value"][mesh.INJECT_SKIPPED_ANNOTATION]
    assert "not injected" in review["response"]["warnings"][0]


async def test_trust_anchors_are_looked_up_only_for_pods_that_get_the_proxy(
    running: Running,
) -> None:
    opted_out = {**POD, "metadata": {"annotations": {mesh.INJECT_ANNOTATION: "disabled"}}}
    _, review = await running.post("/inject", admission_review(opted_out))
    assert "patch" not in review["response"]
    assert running.anchors.reads == 0


async def test_an_unreadable_namespace_admits_the_pod_as_it_is_and_says_so(
    running: Running,
) -> None:
    _, review = await running.post("/inject", admission_review(POD, namespace="unreadable"))
    assert review["response"]["allowed"] is True
    assert "patch" not in review["response"]
    assert "not injected" in review["response"]["warnings"][0]


async def test_validation_refuses_with_the_reason_as_the_status_message(running: Running) -> None:
    split = {
        "apiVersion": "split.smi-spec.io/v1alpha2",
        "kind": "TrafficSplit",
        "metadata": {"name": "books"},
        "spec": {"service": "books", "backends": [{"service": "books", "weight": 1}]},
    }
    _, review = await running.post("/validate", admission_review(split))
    assert review["response"]["allowed"] is False
    assert review["response"]["status"]["code"] == 422
    assert review["response"]["status"]["message"].startswith("TrafficSplit shop/books: ")


async def test_a_server_is_refused_when_the_others_cannot_be_read(running: Running) -> None:
    server = {
        "apiVersion": "policy.linkerd.io/v1beta3",
        "kind": "Server",
        "metadata": {"name": "web"},
        "spec": {"podSelector": {}, "port": 8080},
    }
    _, review = await running.post("/validate", admission_review(server))
    assert review["response"]["allowed"] is False
    assert review["response"]["status"]["code"] == 503


async def test_conversion_converts_every_object(running: Running) -> None:
    split = {
        "apiVersion": "split.smi-spec.io/v1alpha1",
        "kind": "TrafficSplit",
        "metadata": {"name": "books"},
        "spec": {"service": "books", "backends": [{"service": "v1", "weight": "250m"}]},
    }
    request = {"uid": "c0", "desiredAPIVersion": "split.smi-spec.io/v1alpha4", "objects": [split]}
    _, review = await running.post("/convert", {"request": request})
    response = review["response"]
    assert response["result"] == {"status": "Success"}
    assert response["convertedObjects"][0]["spec"]["backends"][0]["weight"] == 250


async def test_what_is_not_a_review_is_a_bad_request(running: Running) -> None:
    status, text = await running.post("/inject", {"request": {}})
    assert status == 400
    assert "AdmissionReview" in text


async def test_metrics_count_reviews_by_webhook(running: Running) -> None:
    await running.post("/inject", admission_review(POD))
    async with (
        aiohttp.ClientSession() as session,
        session.get(running.url + "/metrics", ssl=running.client_tls()) as response,
    ):
        text = await response.text()
    assert 'weft_webhook_duration_seconds_count{webhook="inject"} 1.0' in text


async def test_a_renewed_certificate_is_served_without_a_restart(running: Running) -> None:
    keeper = running.keeper
    before = await running.served_serial()
    assert before == keeper.certificates.serving.cert.serial_number
    assert isinstance(keeper.clock, Clock)
    keeper.clock.now = datetime.datetime.now(datetime.UTC)  # past two thirds of 3h
    await keeper.renew_and_publish()
    after = await running.served_serial()
    assert after != before
    assert after == keeper.certificates.serving.cert.serial_number
    assert isinstance(keeper.publish, Published)
    assert keeper.publish.bundles == [keeper.certificates.bundle]
    assert keeper.bundle_file is not None
    assert keeper.bundle_file.read_bytes() == keeper.certificates.bundle
