"""AdmissionReview and ConversionReview (v1) bodies: read requests, build responses.

A review too large to read is still answered, from the start of its body: the API
server writes the request's uid first (Go encodes struct fields in order, and `uid` is
the first field of both requests), so the answer can say why, in words the user sees.
"""

from __future__ import annotations

import base64
import json
import re
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
    try:
        desired = str(request["desiredAPIVersion"])
        converted = [convert(obj, desired) for obj in request["objects"]]
    except (ConversionError, KeyError, TypeError) as error:
        return conversion_failed(str(request["uid"]), str(error))
    response = {"uid": request["uid"], "convertedObjects": converted}
    return _conversion_review({**response, "result": {"status": "Success"}})


def conversion_failed(uid: str, reason: str) -> dict[str, Any]:
    """The API server answers the read or write that needed the conversion with `reason`."""
    result = {"status": "Failure", "message": f"weft conversion: {reason}"}
    return _conversion_review({"uid": uid, "convertedObjects": [], "result": result})


_REQUEST_UID = re.compile(rb'"request"\s*:\s*\{\s*"uid"\s*:\s*"([^"\\]{1,256})"')


def uid_in_head(head: bytes) -> str | None:
    """The request's uid, from the start of a review's body as the API server writes it."""
    found = _REQUEST_UID.search(head)
    return found.group(1).decode("utf-8", "replace") if found else None


def too_large(size: int | None, limit: int) -> str:
    """Why a review of `size` bytes (None: sent without a length) is not read."""
    sent = f"{_mebibytes(size)} ({size} bytes), " if size is not None else ""
    return f"its review is {sent}more than the {_mebibytes(limit)} Weft's webhooks read"


def _mebibytes(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def _conversion_review(response: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "response": response,
    }


def _admission_review(response: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
