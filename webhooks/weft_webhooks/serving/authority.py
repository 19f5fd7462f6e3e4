"""The webhooks' shared CA, kept in a Secret of Weft's namespace.

Every replica reads it and signs its own serving certificate with it, so each one is
trusted by the one caBundle they all publish. Replicas need no leader: the first to
start creates the Secret (a second one's create fails with a conflict and it reads the
first's), and a rotation is written with the resourceVersion it was computed from, so
of two replicas rotating at once one write wins and the other reads it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from kubernetes_asyncio import client
from kubernetes_asyncio.client.api_client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException

from weft_webhooks import ca_secret
from weft_webhooks.certificates import Authority

log = logging.getLogger(__name__)

Change = Callable[[Authority | None], Authority]


class AuthorityStore(Protocol):
    async def update(self, change: Change) -> Authority:
        """The stored authority after `change` (given None when there is none yet);
        `change` returns its argument when nothing is to be written."""
        ...


class SecretAuthority:
    def __init__(self, api: ApiClient, namespace: str) -> None:
        self._core = client.CoreV1Api(api)
        self._namespace = namespace

    async def update(self, change: Change) -> Authority:
        while True:
            secret = await self._read()
            found = self._parse(secret)
            wanted = change(found)
            if wanted is found:
                return wanted
            try:
                await self._write(secret, wanted)
            except ApiException as error:
                if error.status != 409:
                    raise
                continue  # another replica wrote first: take what it wrote
            return wanted

    async def _read(self) -> client.V1Secret | None:
        try:
            secret: client.V1Secret = await self._core.read_namespaced_secret(
                ca_secret.SECRET, self._namespace
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return secret

    def _parse(self, secret: client.V1Secret | None) -> Authority | None:
        if secret is None:
            return None
        try:
            return ca_secret.from_data(secret.data)
        except ca_secret.InvalidAuthority as error:
            log.warning("%s; replacing it with a new CA", error)
            return None

    async def _write(self, secret: client.V1Secret | None, authority: Authority) -> None:
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(
                name=ca_secret.SECRET,
                labels={"app.kubernetes.io/part-of": "weft"},
                # A replace with the version read fails (409) if another replica wrote since.
                resource_version=None if secret is None else secret.metadata.resource_version,
            ),
            type="Opaque",
            data=ca_secret.to_data(authority),
        )
        if secret is None:
            await self._core.create_namespaced_secret(self._namespace, body)
            log.info("created the webhooks' CA in Secret %s", ca_secret.SECRET)
        else:
            await self._core.replace_namespaced_secret(ca_secret.SECRET, self._namespace, body)
            log.info("updated the webhooks' CA in Secret %s", ca_secret.SECRET)
