"""Serving certificates under a shared authority, and its rotation, as pure functions
of the time: every replica decides alone and all stay trusted by the published bundle."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from weft_api.pki import KeyPair
from weft_webhooks import ca_secret
from weft_webhooks.certificates import Policy, new_authority, rotate, serve, signer

START = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
POLICY = Policy(
    ips=("127.0.0.1",),
    ca_lifetime=datetime.timedelta(days=90),
    serving_lifetime=datetime.timedelta(days=3),
    bundle_propagation=datetime.timedelta(hours=1),
)
HOUR = datetime.timedelta(hours=1)


def signed_by(leaf: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        leaf.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def trusted(serving: KeyPair, bundle: bytes) -> bool:
    return any(signed_by(serving.cert, ca) for ca in x509.load_pem_x509_certificates(bundle))


def test_the_serving_certificate_names_the_address_and_is_signed_by_the_bundle() -> None:
    authority = new_authority(POLICY, START)
    certificates = serve(authority, None, POLICY, START)
    sans = certificates.serving.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert [str(ip) for ip in sans.value.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert signed_by(certificates.serving.cert, authority.ca.cert)
    assert certificates.bundle == authority.ca.cert_pem()


def test_two_replicas_of_one_authority_are_both_trusted_by_the_one_bundle() -> None:
    authority = new_authority(POLICY, START)
    first, second = serve(authority, None, POLICY, START), serve(authority, None, POLICY, START)
    assert first.serving.cert.serial_number != second.serving.cert.serial_number
    assert first.bundle == second.bundle
    assert trusted(first.serving, second.bundle)
    assert trusted(second.serving, first.bundle)


def test_nothing_changes_before_two_thirds_of_a_lifetime() -> None:
    authority = new_authority(POLICY, START)
    certificates = serve(authority, None, POLICY, START)
    later = START + datetime.timedelta(days=1)
    assert rotate(authority, POLICY, later) is authority
    assert serve(authority, certificates.serving, POLICY, later).serving is certificates.serving


def test_the_serving_certificate_is_renewed_before_it_expires_under_the_same_ca() -> None:
    authority = new_authority(POLICY, START)
    certificates = serve(authority, None, POLICY, START)
    later = START + datetime.timedelta(days=2, hours=1)
    renewed = serve(rotate(authority, POLICY, later), certificates.serving, POLICY, later)
    assert renewed.serving.cert.serial_number != certificates.serving.cert.serial_number
    assert renewed.serving.cert.not_valid_after_utc > certificates.serving.cert.not_valid_after_utc
    assert renewed.bundle == certificates.bundle  # nothing to publish
    assert signed_by(renewed.serving.cert, authority.ca.cert)


def test_a_new_ca_joins_the_bundle_signs_an_hour_later_and_the_old_leaves_an_hour_after() -> None:
    """Any replica, at any moment of the rotation, serves a certificate the bundle of
    that moment trusts: also one that re-signs later than another (within the hour)."""
    authority = new_authority(POLICY, START)
    ca_due = START + datetime.timedelta(days=61)
    old_serving = serve(authority, None, POLICY, ca_due - HOUR).serving
    published = rotate(authority, POLICY, ca_due)
    assert published.next_ca is not None
    assert published.bundle == authority.ca.cert_pem() + published.next_ca.cert_pem()
    assert signer(published, POLICY, ca_due) is authority.ca
    assert serve(published, old_serving, POLICY, ca_due).serving is old_serving

    half_an_hour = ca_due + HOUR / 2
    assert rotate(published, POLICY, half_an_hour) is published
    assert signer(published, POLICY, half_an_hour) is authority.ca

    an_hour = ca_due + HOUR
    assert rotate(published, POLICY, an_hour) is published  # both CAs still trusted
    new_serving = serve(published, old_serving, POLICY, an_hour).serving
    assert signed_by(new_serving.cert, published.next_ca.cert)
    assert trusted(old_serving, published.bundle)
    assert trusted(new_serving, published.bundle)

    retired = rotate(published, POLICY, ca_due + 2 * HOUR)
    assert retired.ca is published.next_ca
    assert retired.next_ca is None
    assert retired.bundle == published.next_ca.cert_pem()
    assert serve(retired, new_serving, POLICY, ca_due + 2 * HOUR).serving is new_serving


@pytest.mark.parametrize("rotating", [False, True])
def test_the_authority_survives_its_secret(rotating: bool) -> None:
    authority = new_authority(POLICY, START)
    if rotating:
        authority = rotate(authority, POLICY, START + datetime.timedelta(days=61))
    back = ca_secret.from_data(ca_secret.to_data(authority))
    assert back.bundle == authority.bundle
    assert back.next_ca_published == authority.next_ca_published
    assert back.ca.key_pem() == authority.ca.key_pem()


@pytest.mark.parametrize("data", [None, {}, {"ca.crt": "bm90IGEgY2VydA==", "ca.key": "eA=="}])
def test_a_secret_without_a_usable_ca_is_refused(data: dict[str, str] | None) -> None:
    with pytest.raises(ca_secret.InvalidAuthority, match="weft-webhooks-ca holds no usable CA"):
        ca_secret.from_data(data)
