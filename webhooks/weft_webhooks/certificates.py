"""The webhooks' serving certificates and their renewal, as pure functions of the time.

One self-signed CA, the authority, is shared by every replica (the webhooks keep it in a
Secret, see serving/authority.py): its certificate is the caBundle the API server
trusts, so whichever replica the Service picks is trusted, and every replica publishes
the same bundle (none replaces another's). Each replica signs its own short-lived
serving certificate with it:
- the serving certificate is renewed once two thirds of its life has passed;
- the CA is replaced without a moment the API server would refuse any replica, in
  three steps decided by the time alone, so replicas agree without talking:
  1. a next CA is added to the bundle beside the current one;
  2. once that bundle has had time to reach the API servers, the next CA signs;
  3. once every replica has had time to re-sign, the old CA leaves the bundle.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, replace

from cryptography.exceptions import InvalidSignature

from weft_api.pki import KeyPair, issue, new_ca

_RENEW_AFTER = 2 / 3  # of a certificate's lifetime


@dataclass(frozen=True, slots=True)
class Policy:
    dns_names: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    ca_lifetime: datetime.timedelta = datetime.timedelta(days=365)
    serving_lifetime: datetime.timedelta = datetime.timedelta(days=30)
    # How long a new bundle is published before the next CA signs anything, and again
    # before the old CA leaves it (every replica renews within this time).
    bundle_propagation: datetime.timedelta = datetime.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Authority:
    """The CA every replica signs with, and the next one while it is replaced."""

    ca: KeyPair
    next_ca: KeyPair | None = None
    next_ca_published: datetime.datetime | None = None

    @property
    def bundle(self) -> bytes:
        """The CA certificates the API server must trust, PEM."""
        cas = [self.ca] if self.next_ca is None else [self.ca, self.next_ca]
        return b"".join(ca.cert_pem() for ca in cas)


@dataclass(frozen=True, slots=True)
class ServingCertificates:
    """What one replica serves: its certificate, under the shared authority."""

    authority: Authority
    serving: KeyPair

    @property
    def bundle(self) -> bytes:
        return self.authority.bundle


def new_authority(policy: Policy, now: datetime.datetime) -> Authority:
    return Authority(ca=_new_ca(policy, now))


def rotate(authority: Authority, policy: Policy, now: datetime.datetime) -> Authority:
    """The authority from `now`: the same object when nothing is due."""
    if authority.next_ca is not None and authority.next_ca_published is not None:
        if now >= authority.next_ca_published + 2 * policy.bundle_propagation:
            return Authority(ca=authority.next_ca)
        return authority
    if _due(authority.ca, now):
        return replace(authority, next_ca=_new_ca(policy, now), next_ca_published=now)
    return authority


def signer(authority: Authority, policy: Policy, now: datetime.datetime) -> KeyPair:
    """The CA that signs serving certificates at `now`."""
    published = authority.next_ca_published
    if authority.next_ca is None or published is None:
        return authority.ca
    return authority.next_ca if now >= published + policy.bundle_propagation else authority.ca


def serve(
    authority: Authority,
    serving: KeyPair | None,
    policy: Policy,
    now: datetime.datetime,
) -> ServingCertificates:
    """`serving` kept while the signer signed it and it is not due, else a new one."""
    ca = signer(authority, policy, now)
    if serving is None or not _signed_by(serving, ca) or _due(serving, now):
        serving = _serve(ca, policy, now)
    return ServingCertificates(authority, serving)


def _signed_by(pair: KeyPair, ca: KeyPair) -> bool:
    try:
        pair.cert.verify_directly_issued_by(ca.cert)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


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
