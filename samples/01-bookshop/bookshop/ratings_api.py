"""The ratings gRPC API without generated code: JSON messages over gRPC's bytes.

Method `/bookshop.Ratings/Get`: `{"book_id": "1"}` -> `{"book_id": "1", "stars": 4.5,
"votes": 120}`. The service also answers grpc.health.v1 Check (SERVING), whose two
tiny protobuf messages are written by hand, for Kubernetes' gRPC probes.
"""

from __future__ import annotations

import json
from typing import Any

SERVICE = "bookshop.Ratings"
GET = "Get"
GET_PATH = f"/{SERVICE}/{GET}"
HEALTH_SERVICE = "grpc.health.v1.Health"
SERVING = b"\x08\x01"  # HealthCheckResponse{status: SERVING}


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def decode(data: bytes) -> dict[str, Any]:
    message = json.loads(data or b"{}")
    if not isinstance(message, dict):
        raise ValueError("a ratings message is a JSON object")
    return message
