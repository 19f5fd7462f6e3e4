"""Who may read a config: pure checks of a hello against the stream's peer.

Over mTLS the gRPC layer has verified the proxy's certificate against the trust roots;
what is left is whether that identity may read the config the hello asks for:

- the pod named in the hello exists (the caller waits for it: a new pod's proxy can be
  faster than the operator's watch);
- its ServiceAccount is the certificate's identity, and the hello says the same
  ServiceAccount;
- where the peer address is a pod's IP (not host-network pods, which share the node's
  address), it is the IP of the pod named in the hello.

A refusal carries a short `reason` (a metric label) and a message fit for the proxy's
log and ours.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from weft_api.identity import identity_name
from weft_operator.config_server.protocol import Hello
from weft_operator.index.store import MeshIndex
from weft_resources.core import Pod


@dataclass(frozen=True, slots=True)
class Peer:
    """What the transport proved about the other end of a stream."""

    identities: tuple[str, ...]  # DNS SANs of its verified certificate; () without one
    address: str | None  # its IP, as the socket saw it


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str  # a metric label
    message: str

    def __str__(self) -> str:
        return self.message


def peer_of(grpc_peer: str, identities: tuple[str, ...]) -> Peer:
    """From grpc's `context.peer()` ('ipv4:10.0.0.5:4321', 'ipv6:[::1]:4321')."""
    kind, _, rest = grpc_peer.partition(":")
    if kind == "ipv4":
        return Peer(identities, rest.rpartition(":")[0])
    if kind == "ipv6":
        host = rest.rpartition(":")[0].strip("[]")
        try:  # an IPv4 client of a dual-stack socket: ::ffff:10.0.0.5
            mapped = ipaddress.IPv6Address(host).ipv4_mapped
        except ValueError:
            return Peer(identities, host)
        return Peer(identities, str(mapped) if mapped else host)
    return Peer(identities, None)


def hello_pod(index: MeshIndex, hello: Hello) -> Pod | None:
    return index.get(Pod, hello.identity.namespace, hello.identity.pod)


def check(
    index: MeshIndex, hello: Hello, peer: Peer, trust_domain: str, pod: Pod | None
) -> Refusal | None:
    """None if `peer` may read the config of the pod `hello` names (`pod`, looked up)."""
    claimed = hello.identity
    if not peer.identities:
        return Refusal("no-identity", "the stream has no verified client certificate")
    if pod is None:
        return Refusal("unknown-pod", f"no pod {claimed.namespace}/{claimed.pod}")
    account = pod.spec.service_account_name
    expected = identity_name(account, pod.namespace, trust_domain)
    if expected not in peer.identities:
        return Refusal(
            "wrong-identity",
            f"pod {claimed.namespace}/{claimed.pod} runs as {expected!r}; "
            f"the client certificate proves {', '.join(peer.identities)!r}",
        )
    if claimed.service_account != account:
        return Refusal(
            "wrong-service-account",
            f"the hello says ServiceAccount {claimed.service_account!r}; "
            f"pod {claimed.namespace}/{claimed.pod} runs as {account!r}",
        )
    if peer.address and peer.address not in pod.ips:
        other = _pod_at(index, peer.address)
        if other is not None:
            return Refusal(
                "wrong-pod",
                f"the stream comes from pod {other.namespace}/{other.name} "
                f"({peer.address}), not {claimed.namespace}/{claimed.pod}",
            )
    return None


def _pod_at(index: MeshIndex, address: str) -> Pod | None:
    """The pod (not host-network) whose IP is `address`, if any."""
    for pod in index.objects(Pod):
        if not pod.spec.host_network and address in pod.ips:
            return pod
    return None
