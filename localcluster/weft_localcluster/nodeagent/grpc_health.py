"""`python -m weft_localcluster.nodeagent.grpc_health [--timeout S] HOST PORT [SERVICE]`:
a gRPC probe (S: the probe's timeoutSeconds, the health call's deadline).

Run inside the pod's namespace by the prober; exits 0 when grpc.health.v1 answers
SERVING. The two messages are tiny, so they are encoded by hand (no generated stubs).
"""

from __future__ import annotations

import sys

import grpc

SERVING = 1


def encode_request(service: str) -> bytes:
    """HealthCheckRequest{service = 1}: a length-delimited field, when not empty."""
    data = service.encode()
    if not data:
        return b""
    return b"\x0a" + _varint(len(data)) + data


def decode_status(message: bytes) -> int:
    """HealthCheckResponse.status (field 1, varint); 0 (UNKNOWN) when absent."""
    i = 0
    while i < len(message):
        key, i = _read_varint(message, i)
        field, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, i = _read_varint(message, i)
            if field == 1:
                return value
        elif wire_type == 2:
            length, i = _read_varint(message, i)
            i += length
        else:
            raise ValueError(f"unexpected wire type {wire_type}")
    return 0


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def main(argv: list[str]) -> int:
    timeout = 5.0
    if argv[:1] == ["--timeout"]:
        timeout, argv = float(argv[1]), argv[2:]
    host, port, service = argv[0], argv[1], argv[2] if len(argv) > 2 else ""
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        check: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/grpc.health.v1.Health/Check"
        )
        try:
            response = check(encode_request(service), timeout=timeout)
        except grpc.RpcError as error:
            print(f"health check failed: {error}", file=sys.stderr)
            return 1
    return 0 if decode_status(response) == SERVING else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
