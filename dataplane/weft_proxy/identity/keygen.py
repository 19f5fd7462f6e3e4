"""A fresh key and its CSR, made by a short-lived child process (keygen_process.py), so
that `cryptography` is never loaded by the long-lived proxy (issue 15). The key reaches
us over the child's stdout pipe: it never touches a disk, as before."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from dataclasses import dataclass

PROGRAM = "weft_proxy.identity.keygen_process"
TIMEOUT_S = 30.0  # an interpreter's start and a P-256 key: under a second, unless starved


class KeygenFailed(Exception):
    pass


@dataclass(frozen=True)
class KeyAndCsr:
    key_pem: bytes  # PKCS#8
    csr_der: bytes  # PKCS#10

    @classmethod
    def decode(cls, data: bytes) -> KeyAndCsr:
        """What keygen_process prints: `{"key_pem": PEM, "csr": base64 of DER}`."""
        try:
            fields = json.loads(data)
            return cls(fields["key_pem"].encode(), base64.b64decode(fields["csr"], validate=True))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise KeygenFailed(f"unreadable output of {PROGRAM}: {error!r}") from None


async def new_key_and_csr(identity: str, spiffe: str) -> KeyAndCsr:
    """Runs the key maker with this interpreter; a failure or a hang is a KeygenFailed
    (the certifier retries with back-off), and the child never outlives the call."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        PROGRAM,
        identity,
        spiffe,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(TIMEOUT_S):
            out, err = await child.communicate()
    except TimeoutError:
        raise KeygenFailed(f"{PROGRAM} did not answer within {TIMEOUT_S:.0f}s") from None
    finally:
        if child.returncode is None:  # timed out, or the certifier was cancelled
            child.kill()
            await child.wait()
    if child.returncode != 0:
        last = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise KeygenFailed(f"{PROGRAM} exited with {child.returncode}: {last[0]}")
    return KeyAndCsr.decode(out)
