"""Every connected proxy's session, fed by index changes and by the proxies' requests.

Pure and synchronous: the gRPC layer hands it requests and changes, and sends the
updates it returns. An index change at once drops the catalog results that read the
changed object and marks the sessions built from them; `flush` (after the batching
window) rebuilds only those sessions, each shared result computed once, and returns
the updates to send. Sessions whose snapshot did not change send nothing.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from weft_api.config import ProxyIdentity
from weft_api.proto import discovery_pb2 as dpb
from weft_operator.catalog import MeshSettings
from weft_operator.conditions import Convergence
from weft_operator.config_server.cache import (
    CatalogCache,
    ClusterIpsKey,
    EntryKey,
    InboundKey,
    OutboundKey,
)
from weft_operator.config_server.protocol import (
    Ack,
    Hello,
    Nack,
    ProtocolError,
    Request,
    Subscription,
)
from weft_operator.config_server.resources import (
    ENDPOINTS,
    INBOUND_REF,
    NO_SERVICE,
    OUTBOUND,
    TRUST_BUNDLE_REF,
    Ref,
    Resource,
    trust_bundle_resource,
)
from weft_operator.config_server.session import ProxySession, Reply
from weft_operator.config_server.snapshot import Snapshot, WireMemo
from weft_operator.config_server.targets import ClusterIp, parse_target
from weft_operator.index.store import MeshIndex
from weft_operator.reconciler import Change
from weft_resources.base import ObjectKey

MAX_TARGETS_PER_PROXY = 10_000


@dataclass(frozen=True, slots=True)
class Outgoing:
    session_id: int
    update: dpb.ConfigUpdate


@dataclass(frozen=True, slots=True)
class Handled:
    reply: Reply | None  # for ACKs and NACKs
    outgoing: list[Outgoing]


@dataclass(frozen=True, slots=True)
class _Programming:
    generation: int
    revision: int | None  # holding that generation; None: it never parsed


class ConfigHub:
    def __init__(
        self,
        index: MeshIndex,
        settings: MeshSettings | None = None,
        trust_bundle: bytes = b"",
        serving: bool = True,
    ) -> None:
        self.settings = settings or MeshSettings()
        self.cache = CatalogCache(index, self.settings)
        self.sessions: dict[int, ProxySession] = {}
        self.serving = serving  # False until the index holds the cluster (warm-up)
        self.revision = 0  # of the index, as the last Change said
        self.epoch = 0  # moves whenever convergence may have changed
        self._trust_bundle = trust_bundle_resource(trust_bundle)
        self._holders: dict[EntryKey, set[int]] = {}
        self._stale: set[int] = set()
        self._programming: dict[ObjectKey, _Programming] = {}
        self._memo: WireMemo = {}
        self._ids = itertools.count(1)

    # --- index changes ----------------------------------------------------------------

    def note_change(self, change: Change) -> None:
        self.revision = max(self.revision, change.revision)
        self.epoch += 1
        if change.index_changed:
            for entry in self.cache.invalidate(change.key):
                self._stale.update(self._holders.get(entry, ()))
        if change.deleted:
            self._programming.pop(change.key, None)
        elif change.generation is not None:
            programming = _Programming(change.generation, change.content_revision)
            self._programming[change.key] = programming

    def set_trust_bundle(self, pem: bytes) -> None:
        self._trust_bundle = trust_bundle_resource(pem)
        self._stale.update(self.sessions)

    @property
    def settled(self) -> bool:
        """No change waits for a flush: every session is built from the current index."""
        return not self._stale

    def flush(self) -> list[Outgoing]:
        """Rebuild the sessions changes affected; the updates to send now."""
        for session_id in sorted(self._stale):
            self._rebuild(session_id)
        self._stale.clear()
        for session in self.sessions.values():
            session.still_current(self.revision)
        outgoing = self._next_updates(self.sessions)
        self._memo.clear()  # bounded: only shared within one batch
        self.epoch += 1
        return outgoing

    def begin_serving(self) -> list[Outgoing]:
        """The index is warm: build and send every waiting proxy's first config."""
        self.serving = True
        self._stale.update(self.sessions)
        return self.flush()

    # --- proxies ------------------------------------------------------------------------

    def connect(self, hello: Hello) -> tuple[int, list[Outgoing]]:
        session_id = next(self._ids)
        targets = list(dict.fromkeys(hello.targets))[:MAX_TARGETS_PER_PROXY]
        self.sessions[session_id] = ProxySession(hello.identity, hello.proxy_version, targets)
        self.epoch += 1
        return session_id, self._refresh(session_id)

    def disconnect(self, session_id: int) -> None:
        session = self.sessions.pop(session_id, None)
        self._stale.discard(session_id)
        if session is not None:
            self._hold(session_id, session.entries, frozenset())
            self.epoch += 1

    def handle(self, session_id: int, request: Request) -> Handled:
        session = self.sessions[session_id]
        match request:
            case Ack(nonce, version):
                reply = session.ack(nonce, version)
                self.epoch += 1
                return Handled(reply, self._next_updates({session_id: session}))
            case Nack(nonce, version, detail):
                return Handled(session.nack(nonce, version, detail), [])
            case Subscription(targets, subscribe):
                self._subscribe(session, targets, subscribe)
                return Handled(None, self._refresh(session_id))
            case Hello():
                raise ProtocolError("repeated-hello", "a second hello on the same stream")

    def _subscribe(self, session: ProxySession, targets: tuple[str, ...], subscribe: bool) -> None:
        if not subscribe:
            for target in targets:
                session.targets.pop(target, None)
            return
        room = MAX_TARGETS_PER_PROXY - len(session.targets)
        new = [target for target in dict.fromkeys(targets) if target not in session.targets]
        if len(new) > room:
            raise ProtocolError(
                "too-many-targets", f"a proxy holds at most {MAX_TARGETS_PER_PROXY} targets"
            )
        session.targets.update(dict.fromkeys(new))

    def _refresh(self, session_id: int) -> list[Outgoing]:
        if not self.serving:
            self._stale.add(session_id)
            return []
        self._rebuild(session_id)
        return self._next_updates({session_id: self.sessions[session_id]})

    def _next_updates(self, sessions: dict[int, ProxySession]) -> list[Outgoing]:
        if not self.serving:
            return []
        outgoing = []
        for session_id, session in sessions.items():
            update = session.next_update(self._memo)
            if update is not None:
                outgoing.append(Outgoing(session_id, update))
        return outgoing

    # --- snapshots ------------------------------------------------------------------------

    def _rebuild(self, session_id: int) -> None:
        session = self.sessions.get(session_id)
        if session is None:
            return
        snapshot, entries = self._build(session.identity, session.targets)
        self._hold(session_id, session.entries, entries)
        session.entries = entries
        session.want(snapshot, self.revision)

    def _build(
        self, identity: ProxyIdentity, targets: dict[str, None]
    ) -> tuple[Snapshot, frozenset[EntryKey]]:
        inbound = InboundKey.of(identity)
        entries: set[EntryKey] = {inbound}
        resources: dict[Ref, Resource] = {
            INBOUND_REF: self.cache.inbound(inbound),
            TRUST_BUNDLE_REF: self._trust_bundle,
        }
        for target in targets:
            key = self._resolve(target, identity.namespace, entries)
            if key is None:
                resources[Ref(OUTBOUND, target)] = NO_SERVICE
                continue
            entries.add(key)
            entry = self.cache.outbound(key)
            resources[Ref(OUTBOUND, target)] = entry.service
            for name, endpoints in entry.endpoints.items():
                resources[Ref(ENDPOINTS, name)] = endpoints
        return Snapshot.of(resources), frozenset(entries)

    def _resolve(self, target: str, client: str, entries: set[EntryKey]) -> OutboundKey | None:
        parsed = parse_target(target, self.settings.cluster_domain)
        if isinstance(parsed, ClusterIp):
            entries.add(ClusterIpsKey())
            parsed = self.cache.cluster_ips().get(parsed.address)
        if parsed is None:
            return None
        return OutboundKey(parsed.namespace, parsed.name, client)

    def _hold(
        self, session_id: int, before: frozenset[EntryKey], after: frozenset[EntryKey]
    ) -> None:
        """Track who holds which cache entry; entries nobody holds leave the cache."""
        for entry in after - before:
            self._holders.setdefault(entry, set()).add(session_id)
        released = []
        for entry in before - after:
            holders = self._holders.get(entry)
            if holders is not None:
                holders.discard(session_id)
                if not holders:
                    del self._holders[entry]
                    released.append(entry)
        self.cache.discard(released)

    # --- convergence ----------------------------------------------------------------------

    def convergence(self) -> dict[ObjectKey, Convergence]:
        """For each object whose status Weft writes: of the connected proxies whose config
        it went into, how many have ACKed a config holding its current generation."""
        found = {}
        for key, programming in self._programming.items():
            holders: set[int] = set()
            for entry in self.cache.users(key):
                holders |= self._holders.get(entry, set())
            acked = 0
            if programming.revision is not None:
                for session_id in holders:
                    through = self.sessions[session_id].acked_through
                    acked += through is not None and through >= programming.revision
            found[key] = Convergence(programming.generation, acked, len(holders))
        return found
