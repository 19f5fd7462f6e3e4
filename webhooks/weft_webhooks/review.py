"""AdmissionReview and ConversionReview (v1) bodies: read requests, build responses."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from weft_webhooks.conversion import ConversionError, convert


class ReviewError(ValueError):
    """The body is not a review this webhook can answer."""


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    uid: str
    operation: str
    namespace: str
    object: dict[str, Any]


def read_admission(review: Any) -> AdmissionRequest:
    request = review.get("request") if isinstance(review, dict) else None
    if not isinstance(request, dict) or not request.get("uid"):
        raise ReviewError("not an AdmissionReview with a request and its uid")
    obj = request.get("object")
    if not isinstance(obj, dict):
        raise ReviewError("the AdmissionReview request has no object")
    namespace = str(request.get("namespace") or "")
    # Objects created through a namespaced URL may not carry their namespace yet.
    if namespace and not (obj.get("metadata") or {}).get("namespace"):
        obj = {**obj, "metadata": {**(obj.get("metadata") or {}), "namespace": namespace}}
    return AdmissionRequest(
        uid=str(request["uid"]),
        operation=str(request.get("operation", "")),
        namespace=namespace,
        object=obj,
    )


def admitted(
    uid: str, patch: Iterable[Mapping[str, Any]] = (), warnings: Iterable[str] = ()
) -> dict[str, Any]:
    response: dict[str, Any] = {"uid": uid, "allowed": True}
    operations = list(patch)
    if operations:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(operations).encode()).decode()
    warned = list(warnings)
    if warned:
        response["warnings"] = warned
    return _admission_review(response)


def denied(uid: str, message: str, code: int = 422) -> dict[str, Any]:
    """The API server shows `message` to the user, after the webhook's name."""
    status = {"code": code, "message": message}
    return _admission_review({"uid": uid, "allowed": False, "status": status})


def conversion_response(review: Any) -> dict[str, Any]:
    """Convert every object of a ConversionReview, or fail them all with the reason."""
    request = review.get("request") if isinstance(review, dict) else None
    if not isinstance(request, dict) or not request.get("uid"):
        raise ReviewError("not a ConversionReview with a request and its uid")
    response: dict[str, Any] = {"uid": request["uid"]}
    try:
        desired = str(request["desiredAPIVersion"])
        response["convertedObjects"] = [convert(obj, desired) for obj in request["objects"]]
        response["result"] = {"status": "Success"}
    except (ConversionError, KeyError, TypeError) as error:
        response["convertedObjects"] = []
        response["result"] = {"status": "Failure", "message": f"weft conversion: {error}"}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "response": response,
    }


def _admission_review(response: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
