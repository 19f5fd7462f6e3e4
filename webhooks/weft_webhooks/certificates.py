"""The webhooks' serving certificates and their renewal, as pure functions of the time.

A self-signed CA (its certificate is the caBundle the API server trusts) signs a
short-lived serving certificate:
- the serving certificate is renewed once two thirds of its life has passed;
- the CA is replaced without a moment the API server would refuse us: a next CA is
  first added to the bundle beside the current one; only once that bundle has had
  time to reach the API servers does the next CA become the signer.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, replace

from weft_api.pki import KeyPair, issue, new_ca

_RENEW_AFTER = 2 / 3  # of a certificate's lifetime


@dataclass(frozen=True, slots=True)
class Policy:
    dns_names: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    ca_lifetime: datetime.timedelta = datetime.timedelta(days=365)
    serving_lifetime: datetime.timedelta = datetime.timedelta(days=30)
    # How long a new bundle is published before the next CA signs anything.
    bundle_propagation: datetime.timedelta = datetime.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class ServingCertificates:
    ca: KeyPair
    serving: KeyPair
    next_ca: KeyPair | None = None
    next_ca_published: datetime.datetime | None = None

    @property
    def bundle(self) -> bytes:
        """The CA certificates the API server must trust, PEM."""
        cas = [self.ca] if self.next_ca is None else [self.ca, self.next_ca]
        return b"".join(ca.cert_pem() for ca in cas)


def issue_certificates(policy: Policy, now: datetime.datetime) -> ServingCertificates:
    ca = _new_ca(policy, now)
    return ServingCertificates(ca=ca, serving=_serve(ca, policy, now))


def renew(
    certificates: ServingCertificates, policy: Policy, now: datetime.datetime
) -> ServingCertificates:
    """The certificates to use from `now`: the same object when nothing is due."""
    current = certificates
    if current.next_ca is not None and current.next_ca_published is not None:
        if now >= current.next_ca_published + policy.bundle_propagation:
            ca = current.next_ca
            return ServingCertificates(ca=ca, serving=_serve(ca, policy, now))
    elif _due(current.ca, now):
        return replace(current, next_ca=_new_ca(policy, now), next_ca_published=now)
    if _due(current.serving, now):
        return replace(current, serving=_serve(current.ca, policy, now))
    return current


def _due(pair: KeyPair, now: datetime.datetime) -> bool:
    start, end = pair.cert.not_valid_before_utc, pair.cert.not_valid_after_utc
    return now >= start + (end - start) * _RENEW_AFTER


def _new_ca(policy: Policy, now: datetime.datetime) -> KeyPair:
    return new_ca(f"weft-webhooks-ca-{now:%Y%m%d%H%M%S}", now=now, validity=policy.ca_lifetime)


def _serve(ca: KeyPair, policy: Policy, now: datetime.datetime) -> KeyPair:
    common_name = (policy.dns_names or policy.ips or ("weft-webhooks",))[0]
    return issue(
        ca,
        common_name,
        dns_names=policy.dns_names,
        ips=policy.ips,
        server=True,
        now=now,
        validity=policy.serving_lifetime,
    )
