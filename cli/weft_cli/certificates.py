"""Reading X.509 certificates for the user: load, who signed, how long left."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature


def load(pem: str | bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM text; empty when there is none (or it does not parse)."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        return []


def signed_by_one_of(cert: x509.Certificate, anchors: list[x509.Certificate]) -> bool:
    for anchor in anchors:
        try:
            cert.verify_directly_issued_by(anchor)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False


def time_left(cert: x509.Certificate, now: datetime.datetime) -> datetime.timedelta:
    return cert.not_valid_after_utc - now


def day(cert: x509.Certificate) -> str:
    return f"{cert.not_valid_after_utc:%Y-%m-%d}"
