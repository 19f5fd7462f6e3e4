"""AdmissionReview and ConversionReview bodies, and the caBundle patches: pure."""

from __future__ import annotations

import base64
import json

import pytest

from weft_webhooks import cabundle
from weft_webhooks.review import (
    ReviewError,
    admitted,
    conversion_response,
    denied,
    read_admission,
)


def test_an_object_without_a_namespace_gets_the_requests() -> None:
    review = {"request": {"uid": "u", "namespace": "shop", "object": {"metadata": {"name": "a"}}}}
    request = read_admission(review)
    assert request.object["metadata"] == {"name": "a", "namespace": "shop"}
    assert review["request"]["object"]["metadata"] == {"name": "a"}  # not modified


@pytest.mark.parametrize("body", [[], {}, {"request": {"uid": ""}}, {"request": {"uid": "u"}}])
def test_what_is_not_an_admission_review_is_refused(body: object) -> None:
    with pytest.raises(ReviewError):
        read_admission(body)


def test_an_admission_without_patch_or_warnings_says_only_allowed() -> None:
    assert admitted("u")["response"] == {"uid": "u", "allowed": True}
    patched = admitted("u", [{"op": "add", "path": "/a", "value": 1}], ["careful"])["response"]
    assert json.loads(base64.b64decode(patched["patch"])) == [
        {"op": "add", "path": "/a", "value": 1}
    ]
    assert patched["warnings"] == ["careful"]
    assert denied("u", "no")["response"]["status"] == {"code": 422, "message": "no"}


def test_a_conversion_that_fails_fails_every_object_with_the_reason() -> None:
    request = {
        "uid": "c",
        "desiredAPIVersion": "split.smi-spec.io/v1alpha1",
        "objects": [{"apiVersion": "policy.linkerd.io/v1beta3", "kind": "Server"}],
    }
    response = conversion_response({"request": request})["response"]
    assert response["convertedObjects"] == []
    assert response["result"]["status"] == "Failure"
    assert "is not converted by Weft" in response["result"]["message"]


def test_the_bundle_is_patched_into_every_webhook_that_lacks_it() -> None:
    configuration = {
        "webhooks": [
            {"name": "inject.weft.dev", "clientConfig": {"url": "https://x", "caBundle": "old"}},
            {"name": "other.weft.dev", "clientConfig": {"url": "https://y", "caBundle": "new"}},
        ]
    }
    assert cabundle.webhook_configuration_patch(configuration, "new") == [
        {"op": "test", "path": "/webhooks/0/name", "value": "inject.weft.dev"},
        {"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": "new"},
    ]


def test_only_crds_switched_to_webhook_conversion_are_patched() -> None:
    assert cabundle.crd_patch({"spec": {"conversion": {"strategy": "None"}}}, "b") == []
    webhook = {"strategy": "Webhook", "webhook": {"clientConfig": {"url": "https://x"}}}
    assert cabundle.crd_patch({"spec": {"conversion": webhook}}, "b") == [
        {"op": "add", "path": "/spec/conversion/webhook/clientConfig/caBundle", "value": "b"}
    ]
    webhook["webhook"]["clientConfig"]["caBundle"] = "b"  # type: ignore[index]
    assert cabundle.crd_patch({"spec": {"conversion": webhook}}, "b") == []
