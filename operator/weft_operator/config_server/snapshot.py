"""A proxy's resources at one moment, and the update that takes a proxy from one
snapshot to another."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from weft_api.proto import discovery_pb2 as dpb
from weft_operator.config_server.resources import Ref, Resource, content_version, wire_resource

# Wire resources are the same for every proxy making the same transition: built once
# per (resource, base version, version) within a batch.
WireMemo = dict[tuple[Ref, str | None, str], dpb.Resource]


@dataclass(frozen=True, slots=True, eq=False)
class Snapshot:
    resources: Mapping[Ref, Resource]
    version: str

    @classmethod
    def of(cls, resources: Mapping[Ref, Resource]) -> Snapshot:
        listed = sorted(resources.items())
        version = content_version(f"{ref}={res.version}".encode() for ref, res in listed)
        return cls(dict(listed), version)


def update_between(base: Snapshot | None, target: Snapshot, memo: WireMemo) -> dpb.ConfigUpdate:
    """Without a base, everything (`full`); else what changed and what went."""
    update = dpb.ConfigUpdate(version=target.version, full=base is None)
    before: Mapping[Ref, Resource] = base.resources if base is not None else {}
    for ref, resource in target.resources.items():
        previous = before.get(ref)
        if previous is not None and previous.version == resource.version:
            continue
        key = (ref, previous.version if previous else None, resource.version)
        wire = memo.get(key)
        if wire is None:
            wire = memo[key] = wire_resource(ref, resource, previous)
        update.resources.append(wire)
    update.removed.extend(
        dpb.ResourceRef(type=ref.type, name=ref.name)
        for ref in before
        if ref not in target.resources
    )
    return update
