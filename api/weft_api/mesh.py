"""What injection, proxy-init, the proxy and the node agent must agree on.

Annotation names, ports, the proxy's user id, container and volume names, the image,
and the environment through which an injected proxy learns who and where it is.
Ports and the UID are Linkerd's, so habits and firewall rules carry over.
"""

from __future__ import annotations

from typing import NamedTuple

from weft_api import __version__

# --- annotations (pod or namespace) ---------------------------------------------------

INJECT_ANNOTATION = "weft.dev/inject"
LINKERD_INJECT_ANNOTATION = "linkerd.io/inject"  # honoured as an alias of the one above
INJECT_ENABLED = "enabled"
INJECT_DISABLED = "disabled"

# Written by injection: what was added, with which version, or why nothing was.
PROXY_VERSION_ANNOTATION = "weft.dev/proxy-version"
INJECTED_CONTAINERS_ANNOTATION = "weft.dev/injected-containers"
INJECT_SKIPPED_ANNOTATION = "weft.dev/inject-skipped"

# Read by injection (pod first, then namespace): ports as "25,443,8000-8100".
SKIP_INBOUND_PORTS_ANNOTATION = "config.weft.dev/skip-inbound-ports"
SKIP_OUTBOUND_PORTS_ANNOTATION = "config.weft.dev/skip-outbound-ports"
OPAQUE_PORTS_ANNOTATION = "config.weft.dev/opaque-ports"
# Who may tap the proxy (its WEFT_PROXY_TAP_CLIENTS; "" leaves the tap port open).
TAP_CLIENTS_ANNOTATION = "config.weft.dev/tap-clients"
# Read by injection: the proxy's HTTP/2 flood limits (weft_api.http2_limits), e.g.
# "resets=400:200,pings=20:5"; kinds not named keep their defaults.
HTTP2_LIMITS_ANNOTATION = "config.weft.dev/proxy-http2-limits"
# The proxy's log format, `plain` or `json` (Linkerd's config.linkerd.io/proxy-log-format).
PROXY_LOG_FORMAT_ANNOTATION = "config.weft.dev/proxy-log-format"
# Read by the catalog (pod first, then namespace): one of DefaultPolicy's values.
DEFAULT_INBOUND_POLICY_ANNOTATION = "config.weft.dev/default-inbound-policy"
# Read by the catalog (namespace, then the operator's --access-model): what a port no
# Server governs gets without a TrafficTarget. "linkerd": the default inbound policy
# (Linkerd's behaviour); "smi": denied, as SMI's access control is deny by default.
# An explicit default-inbound-policy annotation on the pod or namespace still wins.
ACCESS_MODEL_ANNOTATION = "config.weft.dev/access-model"
ACCESS_MODEL_LINKERD = "linkerd"
ACCESS_MODEL_SMI = "smi"
ACCESS_MODELS = (ACCESS_MODEL_LINKERD, ACCESS_MODEL_SMI)

# Pod labels written by injection: the workload a meshed pod belongs to (Linkerd's
# `linkerd.io/proxy-deployment`, ...). The shipped scrape config (weft_viz) relabels
# them to `deployment`, `statefulset`, ... and `namespace` on the proxy's series, as
# Flagger's queries expect.
PROXY_DEPLOYMENT_LABEL = "weft.dev/proxy-deployment"
PROXY_REPLICASET_LABEL = "weft.dev/proxy-replicaset"
PROXY_STATEFULSET_LABEL = "weft.dev/proxy-statefulset"
PROXY_DAEMONSET_LABEL = "weft.dev/proxy-daemonset"
PROXY_JOB_LABEL = "weft.dev/proxy-job"
PROXY_ROLLOUT_LABEL = "weft.dev/proxy-rollout"
WORKLOAD_NAMESPACE_LABEL = "weft.dev/workload-ns"

# A namespace label that keeps every admission webhook of Weft away from it.
ADMISSION_WEBHOOKS_LABEL = "config.weft.dev/admission-webhooks"

# --- ports ------------------------------------------------------------------------------

PROXY_INBOUND_PORT = 4143
PROXY_OUTBOUND_PORT = 4140
PROXY_ADMIN_PORT = 4191  # /metrics, /live, /ready
PROXY_TAP_PORT = 4190  # gRPC Tap.Observe, for `weft tap` and `weft top` (Linkerd's tap port)
CONFIG_PORT = 8086
IDENTITY_PORT = 8080

# --- the injected pod -------------------------------------------------------------------

PROXY_UID = 2102  # the proxy's own traffic is never redirected back to itself
PROXY_CONTAINER = "weft-proxy"
INIT_CONTAINER = "weft-init"
PROXY_IMAGE = "ghcr.io/weft-dev/weft-proxy"
# The proxy image (Dockerfile target `proxy`) holds the proxy and proxy-init only; this
# one adds the operator, the webhooks and the CLI.
CONTROL_PLANE_IMAGE = "ghcr.io/weft-dev/weft"
PROXY_VERSION = __version__

DEFAULT_CONTROL_PLANE_NAMESPACE = "weft"
# The operator's ServiceAccount: its identity is the one the identity and config servers
# present, which injected proxies and `weft tap` expect.
OPERATOR_SERVICE_ACCOUNT = "weft-operator"
# The ServiceAccount whose identity may use the proxies' tap port (`weft tap`, `top`).
TAP_CLIENT_SERVICE_ACCOUNT = "weft-cli"
TAP_ROLE = "weft-tap"  # grants creating that ServiceAccount's tokens: bound, it lets tap
CONFIG_SERVICE = "weft-config"
IDENTITY_SERVICE = "weft-identity"
# The mesh CA in the control plane's namespace: the issuer's Secret (tls.crt, tls.key and
# the anchors as ca.crt), and the trust roots' ConfigMap that proxies and `weft check` read.
ISSUER_SECRET = "weft-identity-issuer"
TRUST_ROOTS = "weft-identity-trust-roots"
TRUST_ROOTS_KEY = "ca-bundle.crt"

# The projected ServiceAccount token the proxy shows the identity service. Its own
# audience means a token leaked from the proxy opens nothing else in the cluster.
IDENTITY_TOKEN_AUDIENCE = "identity.weft.dev"
IDENTITY_TOKEN_VOLUME = "weft-identity-token"
IDENTITY_TOKEN_DIR = "/var/run/secrets/weft.dev/identity"
IDENTITY_TOKEN_FILE = "token"
# Memory-backed: the proxy's private key never touches the node's disk.
IDENTITY_END_ENTITY_VOLUME = "weft-identity-end-entity"
IDENTITY_END_ENTITY_DIR = "/var/run/weft/identity/end-entity"


class ProxyEnv:
    """Environment variables of the injected proxy container."""

    POD_NAME = "_pod_name"
    POD_NAMESPACE = "_pod_ns"
    POD_SERVICE_ACCOUNT = "_pod_sa"
    POD_UID = "_pod_uid"
    POD_IP = "_pod_ip"
    NODE_NAME = "_pod_node"
    CONFIG_ADDR = "WEFT_PROXY_CONFIG_ADDR"
    IDENTITY_ADDR = "WEFT_PROXY_IDENTITY_ADDR"
    IDENTITY_NAME = "WEFT_PROXY_IDENTITY_NAME"
    SPIFFE_ID = "WEFT_PROXY_SPIFFE_ID"
    IDENTITY_TOKEN_FILE = "WEFT_PROXY_IDENTITY_TOKEN_FILE"
    IDENTITY_DIR = "WEFT_PROXY_IDENTITY_DIR"
    TRUST_DOMAIN = "WEFT_PROXY_TRUST_DOMAIN"
    INBOUND_LISTEN_ADDR = "WEFT_PROXY_INBOUND_LISTEN_ADDR"
    OUTBOUND_LISTEN_ADDR = "WEFT_PROXY_OUTBOUND_LISTEN_ADDR"
    ADMIN_LISTEN_ADDR = "WEFT_PROXY_ADMIN_LISTEN_ADDR"
    TAP_LISTEN_ADDR = "WEFT_PROXY_TAP_LISTEN_ADDR"
    # PEM of the trust roots: the proxy verifies the identity service with them before
    # it sends its token, so they cannot come over the identity channel itself.
    TRUST_ANCHORS = "WEFT_PROXY_TRUST_ANCHORS"
    IDENTITY_SERVER_NAME = "WEFT_PROXY_IDENTITY_SERVER_NAME"  # the identity service's
    # Comma-separated identities allowed on the tap port, over mTLS ("cli": the CLI's,
    # `weft-cli` of the control plane's namespace); unset: open. docs/mtls.md.
    TAP_CLIENTS = "WEFT_PROXY_TAP_CLIENTS"
    INBOUND_PORTS = "WEFT_PROXY_INBOUND_PORTS"  # the pod's declared container ports
    OPAQUE_PORTS = "WEFT_PROXY_INBOUND_OPAQUE_PORTS"  # no protocol detection on these
    # Per-connection limits on HTTP/2 floods, e.g. `resets=200:100,pings=100:50`
    # (weft_proxy.protocols.http2_limits; docs/proxy.md lists the defaults).
    HTTP2_LIMITS = "WEFT_PROXY_HTTP2_LIMITS"
    LOG_FORMAT = "WEFT_PROXY_LOG_FORMAT"  # weft_api.logs.FORMATS: plain (default) or json


def control_plane_address(service: str, namespace: str, cluster_domain: str, port: int) -> str:
    """`weft-config.weft.svc.cluster.local.:8086`; the final dot skips search domains."""
    return f"{service}.{namespace}.svc.{cluster_domain}.:{port}"


# --- port lists in annotations ------------------------------------------------------------


class PortRange(NamedTuple):
    """Ports `first` to `last`, both included; a single port has first == last."""

    first: int
    last: int

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


def parse_port_ranges(text: str) -> tuple[PortRange, ...]:
    """`"25, 443,8000-8100"` -> ranges, in the order written; raises ValueError."""
    ranges = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        first_text, dash, last_text = item.partition("-")
        if not first_text.isdigit() or (dash and not last_text.isdigit()):
            raise ValueError(f"{item!r} is not a port or a range such as 8000-8100")
        first, last = int(first_text), int(last_text or first_text)
        if not 1 <= first <= last <= 65535:
            raise ValueError(f"{item!r} is not within 1-65535, lowest first")
        ranges.append(PortRange(first, last))
    return tuple(ranges)


def format_port_ranges(ranges: tuple[PortRange, ...]) -> str:
    """The inverse of `parse_port_ranges`: `"25,443,8000-8100"`."""
    return ",".join(str(port_range) for port_range in ranges)
