"""The server's TLS: a context whose certificate is replaced while it serves, and the
loop that renews certificates and publishes the CA bundle."""

from __future__ import annotations

import asyncio
import datetime
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from weft_webhooks.certificates import Policy, ServingCertificates, issue_certificates, renew

log = logging.getLogger(__name__)

Clock = Callable[[], datetime.datetime]
Publish = Callable[[bytes], Awaitable[object]]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class CertificateKeeper:
    """Owns the serving certificates: issues them, renews them, publishes the bundle.

    Handshakes after `load_cert_chain` use the new certificate; connections already
    open keep theirs. The key is written to `folder` (0600) because ssl loads files.
    """

    def __init__(
        self,
        policy: Policy,
        folder: Path,
        publish: Publish,
        bundle_file: Path | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.policy, self.folder, self.publish = policy, folder, publish
        self.bundle_file, self.clock = bundle_file, clock
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.certificates = issue_certificates(policy, clock())
        self._serve(self.certificates)
        self._bundle_written: bytes | None = None

    async def keep(self, interval: float) -> None:
        """Renew when due and publish the bundle (repairing drift), every `interval`;
        start it once the server listens."""
        while True:
            await self.renew_and_publish()
            await asyncio.sleep(interval)

    async def renew_and_publish(self) -> None:
        current = self.certificates
        renewed = renew(current, self.policy, self.clock())
        # Serve first, publish second: a new serving certificate is always signed by a
        # CA the published bundle already holds (see certificates.renew).
        if renewed.serving is not current.serving:
            self._serve(renewed)
            log.info("serving certificate renewed, valid until %s", _expiry(renewed))
        self.certificates = renewed
        self._write_bundle()
        try:
            changed = await self.publish(renewed.bundle)
        except Exception as error:  # the API server is away: the next round retries
            log.warning("could not publish the CA bundle: %s", error)
        else:
            if changed:
                log.info("CA bundle published to %s", changed)

    def _serve(self, certificates: ServingCertificates) -> None:
        cert, key = certificates.serving.write(self.folder, "serving")
        self.context.load_cert_chain(cert, key)

    def _write_bundle(self) -> None:
        """For installers on this machine: first written by the first round, once the
        server listens; renamed into place, so never read half-written."""
        bundle = self.certificates.bundle
        if self.bundle_file is None or bundle == self._bundle_written:
            return
        partial = self.bundle_file.with_name(self.bundle_file.name + ".partial")
        partial.write_bytes(bundle)
        partial.replace(self.bundle_file)
        self._bundle_written = bundle


def _expiry(certificates: ServingCertificates) -> str:
    return certificates.serving.cert.not_valid_after_utc.isoformat()
