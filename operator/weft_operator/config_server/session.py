"""One proxy's stream, as a state machine: what it should have, what it was sent, what it
accepted.

- At most one update is in flight; changes meanwhile only move `desired`, and the next
  update (from the last ACKed snapshot to the newest desired one) leaves on the ACK.
- A NACK leaves the proxy on its last accepted snapshot; the NACKed version is not sent
  again, and the next update is sent whole (`full`), in case the proxy's state is not
  what the server believes.
- `acked_through` is the newest index revision the proxy's accepted config is known to
  reflect: what `Programmed` counts.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass

from weft_api.config import ProxyIdentity
from weft_api.proto import discovery_pb2 as dpb
from weft_operator.config_server.cache import EntryKey
from weft_operator.config_server.snapshot import Snapshot, WireMemo, update_between


class Reply(enum.Enum):
    ACKED = "ack"
    NACKED = "nack"
    STALE = "stale"  # no update in flight with that nonce and version


@dataclass(frozen=True, slots=True)
class Sent:
    nonce: str
    snapshot: Snapshot
    revision: int  # of the index the snapshot was built from


class ProxySession:
    def __init__(self, identity: ProxyIdentity, proxy_version: str, targets: list[str]) -> None:
        self.identity = identity
        self.proxy_version = proxy_version
        self.targets: dict[str, None] = dict.fromkeys(targets)  # an ordered set
        self.entries: frozenset[EntryKey] = frozenset()  # the cache entries it is built from
        self.desired: Snapshot | None = None
        self.desired_revision = 0
        self.acked: Snapshot | None = None
        self.acked_through: int | None = None
        self.sent: Sent | None = None
        self.rejected: str | None = None  # the version last NACKed
        self.last_error = ""
        self._resync = False
        self._nonces = itertools.count(1)

    @property
    def name(self) -> str:
        return f"{self.identity.namespace}/{self.identity.pod}"

    def want(self, snapshot: Snapshot, revision: int) -> None:
        """The proxy should have `snapshot`, which reflects index `revision`."""
        self.desired = snapshot
        self.desired_revision = revision
        self._catch_up()

    def still_current(self, revision: int) -> None:
        """Index `revision` changed nothing this proxy reads."""
        self.desired_revision = revision
        self._catch_up()

    def next_update(self, memo: WireMemo) -> dpb.ConfigUpdate | None:
        desired = self.desired
        if self.sent is not None or desired is None:
            return None
        if self.acked is not None and desired.version == self.acked.version:
            return None
        if desired.version == self.rejected:
            return None
        base = None if self._resync else self.acked
        update = update_between(base, desired, memo)
        update.nonce = str(next(self._nonces))
        self.sent = Sent(update.nonce, desired, self.desired_revision)
        self._resync = False
        return update

    def ack(self, nonce: str, version: str) -> Reply:
        sent = self.sent
        if sent is None or sent.nonce != nonce or sent.snapshot.version != version:
            return Reply.STALE
        self.sent = None
        self.acked = sent.snapshot
        self.acked_through = sent.revision
        self.rejected = None
        self._catch_up()
        return Reply.ACKED

    def nack(self, nonce: str, version: str, detail: str) -> Reply:
        sent = self.sent
        if sent is None or sent.nonce != nonce or sent.snapshot.version != version:
            return Reply.STALE
        self.sent = None
        self.rejected = version
        self.last_error = detail
        self._resync = True
        return Reply.NACKED

    def _catch_up(self) -> None:
        acked, desired = self.acked, self.desired
        if self.sent is None and acked is not None and acked.version == _version(desired):
            self.acked_through = self.desired_revision


def _version(snapshot: Snapshot | None) -> str | None:
    return snapshot.version if snapshot is not None else None
