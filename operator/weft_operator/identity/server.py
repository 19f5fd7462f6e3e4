"""The identity gRPC server: TLS with a leaf of the mesh issuer, so proxies verify it
against the trust roots before they send it their ServiceAccount tokens."""

from __future__ import annotations

import datetime

import grpc
from kubernetes_asyncio.client.api_client import ApiClient

from weft_api.csr import certificate_request, new_key
from weft_api.identity import identity_name, spiffe_id
from weft_api.mesh import OPERATOR_SERVICE_ACCOUNT
from weft_api.mesh_ca import LEAF_LIFETIME, KeyPair, issue_leaf
from weft_api.proto import identity_pb2_grpc
from weft_operator.identity.issuer_store import MeshCA
from weft_operator.identity.service import IdentityService
from weft_operator.identity.tokens import TokenReviewer

# The server's own leaf lives as long as the issuer allows (the operator restarts with
# the issuer's rotation); proxies' leaves are the short-lived ones.
SERVER_LIFETIME = datetime.timedelta(days=365)


def serving_identity(namespace: str, trust_domain: str) -> str:
    return identity_name(OPERATOR_SERVICE_ACCOUNT, namespace, trust_domain)


def server_credentials(ca: MeshCA, namespace: str, trust_domain: str) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials([serving_key_and_chain(ca, namespace, trust_domain)])


def config_server_credentials(
    ca: MeshCA, namespace: str, trust_domain: str
) -> grpc.ServerCredentials:
    """The config server's: the same serving identity, and client certificates required
    and verified against the trust roots (a proxy proves itself with its own leaf).
    The roots are read at start: after a trust-anchor rotation, restart the operator."""
    return grpc.ssl_server_credentials(
        [serving_key_and_chain(ca, namespace, trust_domain)],
        root_certificates=ca.trust_roots_pem,
        require_client_auth=True,
    )


def serving_key_and_chain(ca: MeshCA, namespace: str, trust_domain: str) -> tuple[bytes, bytes]:
    identity = serving_identity(namespace, trust_domain)
    spiffe = spiffe_id(OPERATOR_SERVICE_ACCOUNT, namespace, trust_domain)
    key = new_key()
    csr = certificate_request(key, identity, spiffe)
    now = datetime.datetime.now(datetime.UTC)
    leaf = KeyPair(issue_leaf(ca.issuer, csr, identity, spiffe, now, SERVER_LIFETIME), key)
    return leaf.key_pem(), leaf.cert_pem() + ca.issuer.cert_pem()


async def start_identity_server(
    api: ApiClient,
    ca: MeshCA,
    namespace: str,
    trust_domain: str,
    address: str,
    leaf_lifetime: datetime.timedelta = LEAF_LIFETIME,
) -> tuple[grpc.aio.Server, int]:
    """Serve Certify on `address` (host:port; port 0 picks one); returns the bound port."""
    server = grpc.aio.server()
    service = IdentityService(
        ca.issuer,
        trust_domain,
        TokenReviewer(api),
        lifetime=leaf_lifetime,
        trust_roots_pem=ca.trust_roots_pem,
    )
    identity_pb2_grpc.add_IdentityServicer_to_server(service, server)
    port = server.add_secure_port(address, server_credentials(ca, namespace, trust_domain))
    await server.start()
    return server, port
