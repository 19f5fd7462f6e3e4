"""The server's TLS: a context whose certificate is replaced while it serves, and the
loop that renews certificates and publishes the CA bundle."""

from __future__ import annotations

import asyncio
import datetime
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from weft_webhooks.certificates import (
    Authority,
    Policy,
    ServingCertificates,
    new_authority,
    rotate,
    serve,
)
from weft_webhooks.serving.authority import AuthorityStore

log = logging.getLogger(__name__)

Clock = Callable[[], datetime.datetime]
Publish = Callable[[bytes], Awaitable[object]]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class CertificateKeeper:
    """Owns this replica's serving certificate: signs it with the shared authority,
    renews it, rotates the authority when due and publishes the bundle.

    Handshakes after `load_cert_chain` use the new certificate; connections already
    open keep theirs. The key is written to `folder` (0600) because ssl loads files.
    """

    def __init__(
        self,
        policy: Policy,
        folder: Path,
        authority: AuthorityStore,
        publish: Publish,
        bundle_file: Path | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.policy, self.folder, self.authority = policy, folder, authority
        self.publish, self.bundle_file, self.clock = publish, bundle_file, clock
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._certificates: ServingCertificates | None = None
        self._bundle_written: bytes | None = None

    @property
    def certificates(self) -> ServingCertificates:
        if self._certificates is None:
            raise RuntimeError("the certificate keeper has not started")
        return self._certificates

    async def start(self) -> None:
        """Read (or create) the shared authority and serve under it: before listening.
        Until the API server answers there is nothing to serve with, so keep asking."""
        while True:
            try:
                await self._renew()
            except Exception as error:  # the API server is away, or RBAC not applied yet
                log.warning("could not read the webhooks' CA: %s; again in 1s", error)
                await asyncio.sleep(1)
            else:
                return

    async def keep(self, interval: float) -> None:
        """Renew when due and publish the bundle (repairing drift), every `interval`;
        start it once the server listens."""
        while True:
            await self.renew_and_publish()
            await asyncio.sleep(interval)

    async def renew_and_publish(self) -> None:
        try:
            await self._renew()
        except Exception as error:  # the API server is away: the next round retries
            log.warning("could not read the webhooks' CA: %s", error)
        self._write_bundle()
        try:
            changed = await self.publish(self.certificates.bundle)
        except Exception as error:  # the API server is away: the next round retries
            log.warning("could not publish the CA bundle: %s", error)
        else:
            if changed:
                log.info("CA bundle published to %s", changed)

    async def _renew(self) -> None:
        now = self.clock()

        def rotated(found: Authority | None) -> Authority:
            return rotate(found or new_authority(self.policy, now), self.policy, now)

        authority = await self.authority.update(rotated)
        current = self._certificates
        renewed = serve(authority, current.serving if current else None, self.policy, now)
        # Serve first, publish second: the serving certificate is always signed by a CA
        # the stored bundle already holds (see certificates.signer).
        if current is None or renewed.serving is not current.serving:
            cert, key = renewed.serving.write(self.folder, "serving")
            self.context.load_cert_chain(cert, key)
            log.info("serving certificate issued, valid until %s", _expiry(renewed))
        self._certificates = renewed

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
