"""A pod's volumes on disk, and the objects and tokens they are made of.

Volumes are folders under the pod's runtime folder. Files are replaced atomically one
by one (a reader sees the old or the new file, never half of one); ServiceAccount tokens
are requested again at 80% of their lifetime, or after 24 hours, as the kubelet does.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from weft_localcluster.nodeagent.downward import PodFields
from weft_localcluster.nodeagent.kube import Kube
from weft_localcluster.nodeagent.references import Reference, referenced_objects
from weft_localcluster.nodeagent.volumes import Contents, TokenSpec, token_specs, volume_contents

TOKEN_REFRESH_AT = 0.8
TOKEN_MAX_AGE = 24 * 3600.0


def token_due(issued: float, expiry: float, now: float) -> bool:
    return now >= issued + TOKEN_REFRESH_AT * (expiry - issued) or now - issued >= TOKEN_MAX_AGE


def write_volume(folder: Path, contents: Contents) -> None:
    if contents is None:  # an emptyDir: writable by the pod's users, as the kubelet makes it
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o777)
        return
    folder.mkdir(parents=True, exist_ok=True)
    for relative, file in contents.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.read_bytes() == file.content:
            path.chmod(file.mode)
            continue
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_bytes(file.content)
        temporary.chmod(file.mode)
        os.replace(temporary, path)
    for existing in sorted(folder.rglob("*"), reverse=True):  # keys removed since
        relative = existing.relative_to(folder).as_posix()
        if existing.is_file() and relative not in contents:
            existing.unlink()
        elif existing.is_dir() and not any(existing.iterdir()):
            existing.rmdir()


class PodFiles:
    def __init__(self, kube: Kube, volumes_dir: Path) -> None:
        self._kube = kube
        self.volumes_dir = volumes_dir
        self._objects: dict[Reference, dict[str, Any] | None] = {}
        self._tokens: dict[TokenSpec, tuple[str, float, float]] = {}

    def lookup(self, kind: str, name: str) -> Mapping[str, Any] | None:
        return self._objects.get((kind, name))

    def volume_dir(self, name: str) -> Path:
        return self.volumes_dir / name

    async def fetch(self, pod: dict[str, Any]) -> None:
        """The ConfigMaps and Secrets the pod names (None for those that do not exist)."""
        namespace = pod["metadata"]["namespace"]
        references = sorted(referenced_objects(pod))
        found = await asyncio.gather(
            *(self._kube.get(kind, namespace, name) for kind, name in references)
        )
        self._objects = dict(zip(references, found, strict=True))

    async def write(
        self, pod: dict[str, Any], fields: PodFields, allocatable: Mapping[str, str]
    ) -> None:
        """Fetch, then bring every volume up to date; ConfigError names a bad one."""
        await self.fetch(pod)
        now = time.time()
        for spec in token_specs(pod):
            held = self._tokens.get(spec)
            if held is None or token_due(held[1], held[2], now):
                token, expiry = await self._kube.request_token(pod, spec)
                self._tokens[spec] = (token, now, expiry)
        tokens = {spec: held[0] for spec, held in self._tokens.items()}
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            contents = volume_contents(volume, fields, self.lookup, tokens, allocatable)
            write_volume(self.volume_dir(volume["name"]), contents)

    def remove(self) -> None:
        shutil.rmtree(self.volumes_dir, ignore_errors=True)
