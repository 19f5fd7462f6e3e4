"""The key -> bytes payload of a ConfigMap or a Secret, for env and volumes alike."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any


def payload(kind: str, obj: Mapping[str, Any]) -> dict[str, bytes]:
    """A Secret's data decoded, or a ConfigMap's binaryData and data (text wins)."""
    if kind == "Secret":
        return {key: base64.b64decode(value) for key, value in (obj.get("data") or {}).items()}
    binary = {key: base64.b64decode(value) for key, value in (obj.get("binaryData") or {}).items()}
    text = {key: value.encode() for key, value in (obj.get("data") or {}).items()}
    return {**binary, **text}
