"""The CLI's tap certificate: a leaf of `weft-cli.<weft-ns>.serviceaccount.identity.<td>`,
the identity the proxies' tap ports admit (docs/mtls.md).

With the user's kube credentials: a 10-minute token of the ServiceAccount `weft-cli`
(TokenRequest, audience `identity.weft.dev`), then Identity.Certify with that token and
a CSR of a fresh key, over TLS to the operator (its identity verified against the trust
anchors of the ConfigMap), reached by a port-forward through the API server. So RBAC
decides who may tap: whoever may create `serviceaccounts/token` of `weft-cli` (the Role
`weft-tap` that `weft install` creates). The key never leaves this process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from weft_api import mesh
from weft_api.csr import certificate_request, new_key
from weft_api.identity import identity_name, spiffe_id
from weft_api.mesh import TRUST_ROOTS, TRUST_ROOTS_KEY
from weft_api.proto import identity_pb2, identity_pb2_grpc
from weft_cli.errors import CliError
from weft_cli.kube import ApiError, Kube, NotFound
from weft_cli.observe.portforward import forwarded

TOKEN_SECONDS = 600  # the API server's minimum
CERTIFY_TIMEOUT = 20.0


@dataclass(frozen=True)
class TapCredentials:
    """What a tap channel presents, and how it checks each proxy's identity."""

    identity: str
    key_pem: bytes
    chain_pem: bytes  # leaf, then intermediates
    trust_anchors_pem: bytes
    trust_domain: str

    def channel(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.trust_anchors_pem,
            private_key=self.key_pem,
            certificate_chain=self.chain_pem,
        )

    def proxy_identity(self, service_account: str, namespace: str) -> str:
        return identity_name(service_account, namespace, self.trust_domain)


def token_request() -> dict[str, Any]:
    return {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "audiences": [mesh.IDENTITY_TOKEN_AUDIENCE],
            "expirationSeconds": TOKEN_SECONDS,
        },
    }


def serving_pod(slices: Sequence[Mapping[str, Any]]) -> str | None:
    """A ready pod behind the identity Service, from its EndpointSlices."""
    for endpoint_slice in slices:
        for endpoint in endpoint_slice.get("endpoints") or []:
            ready = (endpoint.get("conditions") or {}).get("ready", True)
            target = endpoint.get("targetRef") or {}
            if ready and target.get("kind") == "Pod" and target.get("name"):
                return str(target["name"])
    return None


def _refused(namespace: str, message: str) -> CliError:
    return CliError(
        f"you may not tap: the API server refused a token of the ServiceAccount "
        f"{namespace}/{mesh.TAP_CLIENT_SERVICE_ACCOUNT} ({message}); ask for the Role "
        f"{mesh.TAP_ROLE}: kubectl -n {namespace} create rolebinding NAME --role={mesh.TAP_ROLE} "
        "--user=YOU"
    )


async def _token(kube: Kube, namespace: str) -> str:
    account = mesh.TAP_CLIENT_SERVICE_ACCOUNT
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token"
    try:
        answer = await kube.call("POST", path, body=token_request())
    except NotFound:
        raise CliError(
            f"the ServiceAccount {namespace}/{account} does not exist: the tap ports admit "
            "only its identity; install this version of Weft (weft install | kubectl "
            "apply -f -), or give --weft-namespace"
        ) from None
    except ApiError as error:
        if error.status == 403:
            raise _refused(namespace, str(error)) from None
        raise
    return str((answer.get("status") or {}).get("token") or "")


async def _trust_anchors(kube: Kube, namespace: str) -> bytes:
    roots = await kube.get_or_none(f"/api/v1/namespaces/{namespace}/configmaps/{TRUST_ROOTS}")
    pem = str(((roots or {}).get("data") or {}).get(TRUST_ROOTS_KEY, "")).strip()
    if not pem:
        raise CliError(f"no trust anchors in the ConfigMap {namespace}/{TRUST_ROOTS}")
    return pem.encode()


async def _identity_pod(kube: Kube, namespace: str) -> str:
    slices = await kube.items(
        f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices",
        {"labelSelector": f"kubernetes.io/service-name={mesh.IDENTITY_SERVICE}"},
    )
    pod = serving_pod(slices)
    if pod is None:
        raise CliError(
            f"no ready pod serves the Service {namespace}/{mesh.IDENTITY_SERVICE}: is the "
            "operator running? (weft check)"
        )
    return pod


async def certify(kube: Kube, namespace: str, trust_domain: str) -> TapCredentials:
    """A fresh tap certificate; CliError says why there is none."""
    account = mesh.TAP_CLIENT_SERVICE_ACCOUNT
    token = await _token(kube, namespace)
    anchors = await _trust_anchors(kube, namespace)
    pod = await _identity_pod(kube, namespace)
    identity = identity_name(account, namespace, trust_domain)
    key = new_key()
    request = identity_pb2.CertifyRequest(
        identity=identity,
        token=token,
        certificate_signing_request=certificate_request(
            key, identity, spiffe_id(account, namespace, trust_domain)
        ),
    )
    server = identity_name(mesh.OPERATOR_SERVICE_ACCOUNT, namespace, trust_domain)
    credentials = grpc.ssl_channel_credentials(root_certificates=anchors)
    async with forwarded(kube, namespace, pod, mesh.IDENTITY_PORT) as forward:
        options = [("grpc.ssl_target_name_override", server)]
        async with grpc.aio.secure_channel(forward.address, credentials, options) as channel:
            try:
                response = await identity_pb2_grpc.IdentityStub(channel).Certify(
                    request, timeout=CERTIFY_TIMEOUT
                )
            except grpc.aio.AioRpcError as error:
                reason = forward.failure or error.details() or error.code().name
                raise CliError(
                    f"the identity service (pod {namespace}/{pod}, through a port-forward) "
                    f"gave no tap certificate: {reason}"
                ) from None
    pem = serialization.Encoding.PEM
    chain = [response.leaf_certificate, *response.intermediate_certificates]
    return TapCredentials(
        identity=identity,
        key_pem=key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        chain_pem=b"".join(x509.load_der_x509_certificate(der).public_bytes(pem) for der in chain),
        trust_anchors_pem=(response.trust_anchors_pem.encode() or anchors),
        trust_domain=trust_domain,
    )
