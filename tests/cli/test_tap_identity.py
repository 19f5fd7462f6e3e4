"""The pure parts of `weft tap`'s certificate: which pods need it, which pod serves the
identity Service, the port-forward's framing, the TokenRequest. The whole path runs on
a real install in test_install_on_cluster.py."""

from __future__ import annotations

from typing import Any

from weft_api import mesh
from weft_cli.observe import pods
from weft_cli.observe.portforward import DATA, ERROR, Frames, data_frame
from weft_cli.observe.tap_identity import serving_pod, token_request


def meshed_pod(env: dict[str, str]) -> dict[str, Any]:
    proxy = {"name": mesh.PROXY_CONTAINER, "env": [{"name": k, "value": v} for k, v in env.items()]}
    return {
        "metadata": {"namespace": "shop", "name": "books-0"},
        "spec": {"initContainers": [proxy], "containers": [{"name": "books"}]},
    }


def test_a_pod_whose_proxy_names_tap_clients_and_has_anchors_is_tapped_over_mtls() -> None:
    closed = {mesh.ProxyEnv.TAP_CLIENTS: "cli", mesh.ProxyEnv.TRUST_ANCHORS: "PEM"}
    assert pods.from_api(meshed_pod(closed)).tap_tls
    # As the proxy decides: without anchors it has no identity, so the port stays open.
    assert not pods.from_api(meshed_pod({mesh.ProxyEnv.TAP_CLIENTS: "cli"})).tap_tls
    assert not pods.from_api(meshed_pod({mesh.ProxyEnv.TRUST_ANCHORS: "PEM"})).tap_tls


def test_the_identity_pod_is_a_ready_endpoint_of_the_service() -> None:
    def endpoint(name: str, ready: bool) -> dict[str, Any]:
        return {"conditions": {"ready": ready}, "targetRef": {"kind": "Pod", "name": name}}

    slices = [
        {"endpoints": [endpoint("weft-operator-a", False)]},
        {"endpoints": [endpoint("weft-operator-b", True)]},
    ]
    assert serving_pod(slices) == "weft-operator-b"
    assert serving_pod([{"endpoints": None}, slices[0]]) is None


def test_port_forward_frames_drop_each_channels_port_announcement() -> None:
    frames = Frames()
    port = (8080).to_bytes(2, "little")
    assert frames.payload(bytes([DATA]) + port) == (DATA, b"")
    assert frames.payload(bytes([ERROR]) + port) == (ERROR, b"")
    assert frames.payload(bytes([DATA]) + b"\x16\x03") == (DATA, b"\x16\x03")
    assert frames.payload(bytes([ERROR]) + b"connection refused") == (ERROR, b"connection refused")
    assert data_frame(b"hello") == b"\x00hello"


def test_the_token_is_for_the_identity_service_and_lives_ten_minutes() -> None:
    spec = token_request()["spec"]
    assert spec == {"audiences": [mesh.IDENTITY_TOKEN_AUDIENCE], "expirationSeconds": 600}
