"""`python -m weft_proxy.identity.keygen_process IDENTITY SPIFFE_ID`: makes a fresh key
and the CSR asking for exactly this identity, prints both as one JSON object
(`{"key_pem": PKCS#8 PEM, "csr": base64 of the DER PKCS#10}`, read by
identity/keygen.py) and exits.

A process of its own so that the long-lived proxy never loads `cryptography`: its Rust
module is about 9 MiB of RSS, paid in every pod for work done once per renewal. It
imports no asyncio, which would double its start-up.
"""

from __future__ import annotations

import base64
import json
import sys

from cryptography.hazmat.primitives import serialization

from weft_api.csr import certificate_request, new_key


def main(argv: list[str]) -> None:
    identity, spiffe = argv
    key = new_key()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    csr = base64.b64encode(certificate_request(key, identity, spiffe))
    json.dump({"key_pem": key_pem.decode(), "csr": csr.decode()}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
