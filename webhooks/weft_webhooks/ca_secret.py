"""The shared authority as the `data` of a Secret (base64 values), and back."""

from __future__ import annotations

import base64
import datetime
from collections.abc import Mapping

from weft_api.pki import KeyPair
from weft_webhooks.certificates import Authority

SECRET = "weft-webhooks-ca"
_CA_CRT, _CA_KEY = "ca.crt", "ca.key"
_NEXT_CRT, _NEXT_KEY, _NEXT_PUBLISHED = "next.crt", "next.key", "next-published"


class InvalidAuthority(ValueError):
    pass


def _encode(data: bytes) -> str:
    return base64.b64encode(data).decode()


def to_data(authority: Authority) -> dict[str, str]:
    data = {_CA_CRT: _encode(authority.ca.cert_pem()), _CA_KEY: _encode(authority.ca.key_pem())}
    if authority.next_ca is not None and authority.next_ca_published is not None:
        data[_NEXT_CRT] = _encode(authority.next_ca.cert_pem())
        data[_NEXT_KEY] = _encode(authority.next_ca.key_pem())
        data[_NEXT_PUBLISHED] = _encode(authority.next_ca_published.isoformat().encode())
    return data


def from_data(data: Mapping[str, str] | None) -> Authority:
    """Raises InvalidAuthority when the Secret holds no usable CA."""
    values = data or {}
    try:
        decoded = {key: base64.b64decode(value, validate=True) for key, value in values.items()}
        ca = KeyPair.from_pem(decoded[_CA_CRT], decoded[_CA_KEY])
        if _NEXT_CRT not in decoded:
            return Authority(ca=ca)
        next_ca = KeyPair.from_pem(decoded[_NEXT_CRT], decoded[_NEXT_KEY])
        published = datetime.datetime.fromisoformat(decoded[_NEXT_PUBLISHED].decode())
    except (KeyError, ValueError) as error:
        raise InvalidAuthority(f"Secret {SECRET} holds no usable CA: {error!r}") from None
    return Authority(ca=ca, next_ca=next_ca, next_ca_published=published)
