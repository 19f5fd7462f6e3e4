"""Serving certificates and their renewal, as pure functions of the time."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from weft_webhooks.certificates import Policy, issue_certificates, renew

START = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
POLICY = Policy(
    ips=("127.0.0.1",),
    ca_lifetime=datetime.timedelta(days=90),
    serving_lifetime=datetime.timedelta(days=3),
    bundle_propagation=datetime.timedelta(hours=1),
)


def signed_by(leaf: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        leaf.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def test_the_serving_certificate_names_the_address_and_is_signed_by_the_bundle() -> None:
    certificates = issue_certificates(POLICY, START)
    sans = certificates.serving.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert [str(ip) for ip in sans.value.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert signed_by(certificates.serving.cert, certificates.ca.cert)
    assert certificates.bundle == certificates.ca.cert_pem()


def test_nothing_changes_before_two_thirds_of_a_lifetime() -> None:
    certificates = issue_certificates(POLICY, START)
    assert renew(certificates, POLICY, START + datetime.timedelta(days=1)) is certificates


def test_the_serving_certificate_is_renewed_before_it_expires_under_the_same_ca() -> None:
    certificates = issue_certificates(POLICY, START)
    later = START + datetime.timedelta(days=2, hours=1)
    renewed = renew(certificates, POLICY, later)
    assert renewed.serving.cert.serial_number != certificates.serving.cert.serial_number
    assert renewed.serving.cert.not_valid_after_utc > certificates.serving.cert.not_valid_after_utc
    assert renewed.bundle == certificates.bundle  # nothing to publish
    assert signed_by(renewed.serving.cert, renewed.ca.cert)


def test_a_new_ca_is_published_beside_the_old_before_it_signs_anything() -> None:
    certificates = issue_certificates(POLICY, START)
    ca_due = START + datetime.timedelta(days=61)
    published = renew(certificates, POLICY, ca_due)
    assert published.next_ca is not None
    assert published.serving is certificates.serving  # still served, still trusted
    assert published.bundle == certificates.ca.cert_pem() + published.next_ca.cert_pem()

    too_soon = renew(published, POLICY, ca_due + datetime.timedelta(minutes=30))
    assert too_soon.ca is certificates.ca

    promoted = renew(published, POLICY, ca_due + datetime.timedelta(hours=1))
    assert promoted.ca is published.next_ca
    assert promoted.next_ca is None
    assert signed_by(promoted.serving.cert, published.next_ca.cert)
    assert promoted.bundle == published.next_ca.cert_pem()
