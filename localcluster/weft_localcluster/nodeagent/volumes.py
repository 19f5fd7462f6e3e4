"""What each pod volume holds, as files: pure, from the pod spec and the objects it names.

Supported as the kubelet does: emptyDir, configMap, secret, downwardAPI and projected
(serviceAccountToken, configMap, secret, downwardAPI). Other kinds (hostPath, PVCs, CSI)
make the pod's containers fail to start with a message naming the volume.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from weft_localcluster.nodeagent.downward import FieldError, PodFields
from weft_localcluster.nodeagent.env import ConfigError, ObjectLookup
from weft_localcluster.nodeagent.payloads import payload

DEFAULT_MODE = 0o644
DEFAULT_TOKEN_SECONDS = 3600


@dataclass(frozen=True)
class TokenSpec:
    """One projected ServiceAccount token the pod needs (TokenRequest parameters)."""

    audience: str | None
    expiration_seconds: int


@dataclass(frozen=True)
class File:
    content: bytes
    mode: int


# A volume's files by relative path; None for an emptyDir (a folder the pod fills).
Contents = dict[str, File] | None


def token_specs(pod: Mapping[str, Any]) -> set[TokenSpec]:
    return {_token_spec(source) for source in _token_sources(pod)}


def _token_sources(pod: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        for source in (volume.get("projected") or {}).get("sources") or []:
            if "serviceAccountToken" in source:
                yield source["serviceAccountToken"]


def _token_spec(source: Mapping[str, Any]) -> TokenSpec:
    seconds = source.get("expirationSeconds") or DEFAULT_TOKEN_SECONDS
    return TokenSpec(source.get("audience") or None, int(seconds))


def volume_contents(
    volume: Mapping[str, Any],
    fields: PodFields,
    lookup: ObjectLookup,
    tokens: Mapping[TokenSpec, str],
    allocatable: Mapping[str, str],
) -> Contents:
    name = volume["name"]
    if "emptyDir" in volume:
        return None
    default_mode = _default_mode(volume)
    files: dict[str, File] = {}
    if "configMap" in volume:
        files = _object_files("ConfigMap", volume["configMap"], default_mode, lookup)
    elif "secret" in volume:
        secret = {**volume["secret"], "name": volume["secret"].get("secretName", "")}
        files = _object_files("Secret", secret, default_mode, lookup)
    elif "downwardAPI" in volume:
        files = _downward_files(volume["downwardAPI"], default_mode, fields, allocatable)
    elif "projected" in volume:
        for source in volume["projected"].get("sources") or []:
            files.update(_projected(source, default_mode, fields, lookup, tokens, allocatable))
    else:
        kinds = ", ".join(sorted(set(volume) - {"name"}))
        raise ConfigError(f"volume {name!r}: {kinds} volumes are not supported by the node agent")
    return files


def _default_mode(volume: Mapping[str, Any]) -> int:
    for kind in ("configMap", "secret", "downwardAPI", "projected"):
        if kind in volume and volume[kind].get("defaultMode") is not None:
            return int(volume[kind]["defaultMode"])
    return DEFAULT_MODE


def _projected(
    source: Mapping[str, Any],
    mode: int,
    fields: PodFields,
    lookup: ObjectLookup,
    tokens: Mapping[TokenSpec, str],
    allocatable: Mapping[str, str],
) -> dict[str, File]:
    if "serviceAccountToken" in source:
        token = source["serviceAccountToken"]
        return {token["path"]: File(tokens[_token_spec(token)].encode(), mode)}
    if "configMap" in source:
        return _object_files("ConfigMap", source["configMap"], mode, lookup)
    if "secret" in source:
        return _object_files("Secret", source["secret"], mode, lookup)
    if "downwardAPI" in source:
        return _downward_files(source["downwardAPI"], mode, fields, allocatable)
    raise ConfigError(f"projected source {sorted(source)} is not supported by the node agent")


def _object_files(
    kind: str, ref: Mapping[str, Any], mode: int, lookup: ObjectLookup
) -> dict[str, File]:
    obj = lookup(kind, ref.get("name", ""))
    if obj is None:
        if ref.get("optional"):
            return {}
        raise ConfigError(f'{kind.lower()} "{ref.get("name")}" not found')
    data = payload(kind, obj)
    items = ref.get("items")
    if not items:
        return {key: File(value, mode) for key, value in data.items()}
    files = {}
    for item in items:
        if item["key"] not in data:
            if ref.get("optional"):
                continue
            raise ConfigError(f'{kind.lower()} "{ref.get("name")}" has no key {item["key"]!r}')
        files[item["path"]] = File(data[item["key"]], item.get("mode", mode))
    return files


def _downward_files(
    source: Mapping[str, Any], mode: int, fields: PodFields, allocatable: Mapping[str, str]
) -> dict[str, File]:
    files = {}
    for item in source.get("items") or []:
        try:
            if "fieldRef" in item:
                value = fields.field(item["fieldRef"]["fieldPath"])
            else:
                ref = item["resourceFieldRef"]
                value = fields.resource(
                    ref.get("containerName", ""), ref["resource"], ref.get("divisor"), allocatable
                )
        except (FieldError, KeyError) as error:
            raise ConfigError(f"downwardAPI item {item.get('path')!r}: {error}") from None
        files[item["path"]] = File(value.encode(), item.get("mode", mode))
    return files
