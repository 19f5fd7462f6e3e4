"""The HTTPS server in this process: reviews in, answers out; certificates swapped live."""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import ssl
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from weft_api import mesh
from weft_localcluster import ports
from weft_resources import Server
from weft_webhooks.certificates import Authority, Policy
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


class StoredAuthority:
    """The Secret weft-webhooks-ca, as replicas share it."""

    def __init__(self) -> None:
        self.authority: Authority | None = None
        self.writes = 0

    async def update(self, change: Callable[[Authority | None], Authority]) -> Authority:
        wanted = change(self.authority)
        if wanted is not self.authority:
            self.authority, self.writes = wanted, self.writes + 1
        return wanted


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
    def __init__(
        self, keeper: CertificateKeeper, url: str, anchors: Anchors, stopping: asyncio.Event
    ) -> None:
        self.keeper, self.url, self.anchors = keeper, url, anchors
        self.stopping = stopping  # set as main sets it on SIGTERM

    def client_tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.keeper.certificates.bundle.decode())

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        """`body` as JSON (bytes as they are, as the API server sends a review)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                self.url + path, data=data, headers=headers, ssl=self.client_tls()
            ) as response,
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
    keeper = CertificateKeeper(
        POLICY, tmp_path, StoredAuthority(), published, tmp_path / "ca.crt", clock
    )
    await keeper.start()
    anchors = Anchors()
    lookups = Lookups(annotations_of, no_servers, anchors)
    stopping = asyncio.Event()
    app = make_app(Webhooks(IN_A_CLUSTER, "cluster.local", lookups), stopping)
    runner = web.AppRunner(app)
    await runner.setup()
    port = ports.pick_free()
    await web.TCPSite(runner, ports.HOST, port, ssl_context=keeper.context).start()
    yield Running(keeper, f"https://{ports.HOST}:{port}", anchors, stopping)
    await runner.cleanup()


def admission_review(
    obj: dict[str, Any], namespace: str = "shop", old: dict[str, Any] | None = None
) -> dict[str, Any]:
    """As the API server writes one: the request's uid first, the objects after."""
    operation = "UPDATE" if old else "CREATE"
    request = {"uid": "4ba2", "operation": operation, "namespace": namespace, "object": obj}
    if old:
        request["oldObject"] = old
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


POD: dict[str, Any] = {
    "metadata": {"generateName": "web-"},
    "spec": {"containers": [{"name": "a", "image": "b"}]},
}


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
        "spec": {"service": "books", "backends": [{"service": "books-v2", "weight": 0}]},
    }
    _, review = await running.post("/validate", admission_review(split))
    assert review["response"]["allowed"] is False
    assert review["response"]["status"]["code"] == 422
    assert review["response"]["status"]["message"].startswith("TrafficSplit shop/books: ")


async def test_a_refusal_names_the_first_problems_and_counts_the_others(running: Running) -> None:
    authentication = {
        "apiVersion": "policy.linkerd.io/v1alpha1",
        "kind": "MeshTLSAuthentication",
        "metadata": {"name": "books"},
        "spec": {"identities": [f"Not An Identity {i}" for i in range(40)]},
    }
    _, review = await running.post("/validate", admission_review(authentication))
    message = review["response"]["status"]["message"]
    assert message.count("is not an identity") == 5
    assert message.endswith("; and 35 more")


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


async def test_a_stopping_replica_answers_and_closes_each_connection_after_its_answer(
    running: Running,
) -> None:
    """The API server pools connections to a webhook by the Service's name: a replica on
    its way out keeps answering, and has each caller dial again (a ready replica) rather
    than send the next call down a connection that the final close would cut."""
    request = {"uid": "c1", "desiredAPIVersion": "split.smi-spec.io/v1alpha4", "objects": []}
    body = json.dumps({"request": request}).encode()
    connector = aiohttp.TCPConnector(ssl=running.client_tls(), limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def convert() -> tuple[int, str | None]:
            async with session.post(running.url + "/convert", data=body) as response:
                await response.read()
                return response.status, response.headers.get("Connection")

        assert await convert() == (200, None)  # kept alive while serving
        running.stopping.set()
        assert await convert() == (200, "close")
        assert await convert() == (200, "close")  # a new connection, closed after it too


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


async def test_replicas_share_one_ca_so_each_is_trusted_by_the_bundle_the_other_publishes(
    running: Running, tmp_path: Path
) -> None:
    """A second replica over the same stored authority: it signs with the same CA, so
    the bundle both publish is one (neither replaces the other's) and trusts both."""
    first = running.keeper
    assert isinstance(first.authority, StoredAuthority)
    folder = tmp_path / "second"
    folder.mkdir()
    second = CertificateKeeper(POLICY, folder, first.authority, Published(), clock=first.clock)
    await second.start()
    await first.renew_and_publish()
    await second.renew_and_publish()
    assert first.authority.writes == 1  # created once, by the first to start
    assert isinstance(first.publish, Published)
    assert isinstance(second.publish, Published)
    assert first.publish.bundles == second.publish.bundles == [first.certificates.bundle]
    assert second.certificates.serving.cert.serial_number != (
        first.certificates.serving.cert.serial_number
    )
    # A client trusting what the second published reaches the first one's server.
    trusting = Running(second, running.url, running.anchors, running.stopping)
    assert await trusting.served_serial() == first.certificates.serving.cert.serial_number


MiB = 2**20


def generated_profile(routes: int, first_regex: str = "/api/v1/items/0/[^/]*") -> dict[str, Any]:
    """A ServiceProfile as `linkerd profile --open-api` writes one for a large API."""
    entries: list[dict[str, Any]] = [
        {
            "name": f"GET /api/v1/items/{i}/{{name}}",
            "condition": {"method": "GET", "pathRegex": f"/api/v1/items/{i}/[^/]*"},
            "isRetryable": True,
            "timeout": "250ms",
        }
        for i in range(routes)
    ]
    entries[0]["condition"]["pathRegex"] = first_regex
    return {
        "apiVersion": "linkerd.io/v1alpha2",
        "kind": "ServiceProfile",
        "metadata": {"name": "api.shop.svc.cluster.local", "namespace": "shop"},
        "spec": {"routes": entries},
    }


def size(body: Any) -> int:
    return len(json.dumps(body).encode())


async def test_an_update_of_a_profile_of_600_kb_is_validated_with_its_reason(
    running: Running,
) -> None:
    """aiohttp's default limit (1 MiB) answered this review with a bare 413."""
    profile = generated_profile(5_000, first_regex="/api/v1/items/[0-9+")
    review = admission_review(profile, old=generated_profile(5_000))
    assert 1.1 * MiB < size(review) < 8 * MiB
    status, answer = await running.post("/validate", review)
    assert status == 200
    assert answer["response"]["allowed"] is False
    assert "spec.routes[0].condition.pathRegex" in answer["response"]["status"]["message"]
    fixed = admission_review(generated_profile(5_000), old=profile)
    _, answer = await running.post("/validate", fixed)
    assert answer["response"]["allowed"] is True


async def test_a_pod_of_a_megabyte_gets_the_proxy(running: Running) -> None:
    env = [{"name": f"BLOB_{i}", "value": "x" * 100_000} for i in range(12)]
    pod = {**POD, "spec": {"containers": [{"name": "a", "image": "b", "env": env}]}}
    review = admission_review(pod)
    assert size(review) > 1.1 * MiB
    status, answer = await running.post("/inject", review)
    assert status == 200
    assert any(op["path"] == "/spec/initContainers" for op in patch_of(answer))


async def test_a_list_of_a_megabyte_of_splits_converts(running: Running) -> None:
    def split(i: int) -> dict[str, Any]:
        backends = [{"service": f"books-{i}-{b}", "weight": "100m"} for b in range(10)]
        return {
            "apiVersion": "split.smi-spec.io/v1alpha1",
            "kind": "TrafficSplit",
            "metadata": {"name": f"books-{i}", "namespace": "shop"},
            "spec": {"service": f"books-{i}", "backends": backends},
        }

    objects = [split(i) for i in range(2_500)]
    request = {"uid": "c1", "desiredAPIVersion": "split.smi-spec.io/v1alpha4", "objects": objects}
    assert size({"request": request}) > 1.1 * MiB
    status, review = await running.post("/convert", {"request": request})
    assert status == 200
    assert review["response"]["result"] == {"status": "Success"}
    assert len(review["response"]["convertedObjects"]) == 2_500


def oversized(review: dict[str, Any]) -> bytes:
    """`review` padded past the limit inside its object, the uid still first."""
    obj = review["request"]["object"]
    obj["metadata"]["annotations"] = {"padding": "x" * (9 * MiB)}
    return json.dumps(review).encode()


async def test_a_review_past_the_limit_is_refused_with_the_size_and_the_limit(
    running: Running,
) -> None:
    profile = generated_profile(1)
    status, review = await running.post("/validate", oversized(admission_review(profile)))
    assert status == 200
    response = review["response"]
    assert (response["uid"], response["allowed"], response["status"]["code"]) == (
        "4ba2",
        False,
        413,
    )
    message = response["status"]["message"]
    assert message.startswith("weft cannot validate this object: its review is 9.0 MiB (")
    assert "more than the 8.0 MiB Weft's webhooks read" in message


async def test_a_pod_past_the_limit_is_admitted_unmeshed_with_a_warning(running: Running) -> None:
    status, review = await running.post("/inject", oversized(admission_review(POD)))
    assert status == 200
    assert review["response"]["allowed"] is True  # failurePolicy Ignore: fail open
    assert "patch" not in review["response"]
    assert "not injected, the pod is too large" in review["response"]["warnings"][0]


async def test_a_conversion_past_the_limit_fails_with_the_size_and_the_limit(
    running: Running,
) -> None:
    split = {"metadata": {"name": "books"}, "spec": {"padding": "x" * (9 * MiB)}}
    request = {"uid": "c2", "desiredAPIVersion": "split.smi-spec.io/v1alpha4", "objects": [split]}
    status, review = await running.post("/convert", {"request": request})
    assert status == 200
    result = review["response"]["result"]
    assert result["status"] == "Failure"
    assert "its review is 9.0 MiB" in result["message"]
    assert "list fewer objects at once" in result["message"]


async def test_a_body_past_the_limit_without_a_uid_gets_a_plain_413(running: Running) -> None:
    status, text = await running.post("/validate", b"[" + b" " * (9 * MiB) + b"]")
    assert status == 413
    assert "weft validate webhook: its review is 9.0 MiB" in text
