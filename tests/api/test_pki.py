"""Certificate helpers shared by the local cluster and the webhooks: certificates the
API server and its clients will accept."""

from __future__ import annotations

import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from weft_api import pki


def test_serving_certificate_is_signed_by_the_ca_and_names_loopback() -> None:
    ca = pki.new_ca("test-ca")
    leaf = pki.issue(
        ca, "kube-apiserver", dns_names=("localhost",), ips=("127.0.0.1",), server=True
    )
    leaf.cert.verify_directly_issued_by(ca.cert)
    sans = leaf.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    usage = leaf.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_admin_client_certificate_is_in_system_masters() -> None:
    ca = pki.new_ca("test-ca")
    admin = pki.issue(ca, "weft-admin", organizations=("system:masters",), client=True)
    orgs = admin.cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert [o.value for o in orgs] == ["system:masters"]
    usage = admin.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_ca_is_a_ca_and_keys_are_p256() -> None:
    ca = pki.new_ca("test-ca")
    assert ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(ca.key.curve, ec.SECP256R1)
