"""Names of workload identities, shared by the CA, the catalog and the proxy.

A workload is identified by its ServiceAccount: the certificate carries the DNS SAN
`<sa>.<ns>.serviceaccount.identity.<trust-domain>` and the URI SAN
`spiffe://<trust-domain>/ns/<ns>/sa/<sa>` (Linkerd's names, so policies carry over).
"""

DEFAULT_TRUST_DOMAIN = "cluster.local"


def identity_name(
    service_account: str, namespace: str, trust_domain: str = DEFAULT_TRUST_DOMAIN
) -> str:
    """The DNS-like identity of the pods running as `service_account` in `namespace`."""
    return f"{service_account}.{namespace}.serviceaccount.identity.{trust_domain}"


def namespace_identities(namespace: str, trust_domain: str = DEFAULT_TRUST_DOMAIN) -> str:
    """A suffix wildcard matching every ServiceAccount identity of `namespace`."""
    return f"*.{namespace}.serviceaccount.identity.{trust_domain}"


def spiffe_id(
    service_account: str, namespace: str, trust_domain: str = DEFAULT_TRUST_DOMAIN
) -> str:
    """The SPIFFE URI of the pods running as `service_account` in `namespace`."""
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"
