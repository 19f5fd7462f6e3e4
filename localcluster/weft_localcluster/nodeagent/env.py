"""A container's environment, as the kubelet builds it: envFrom, then env, with $(VAR)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from weft_localcluster.nodeagent.downward import FieldError, PodFields
from weft_localcluster.nodeagent.payloads import payload

# (kind, namespace-local name) -> the object, or None when it does not exist.
ObjectLookup = Callable[[str, str], Mapping[str, Any] | None]


class ConfigError(ValueError):
    """What keeps a container from starting (its waiting reason: CreateContainerConfigError)."""


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: `$$` escapes, unknown or unclosed references stay."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$" or i + 1 == len(text):
            out.append(text[i])
            i += 1
        elif text[i + 1] == "$":
            out.append("$")
            i += 2
        elif text[i + 1] == "(" and (end := text.find(")", i + 2)) != -1:
            name = text[i + 2 : end]
            out.append(variables.get(name, f"$({name})"))
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def object_data(kind: str, obj: Mapping[str, Any]) -> dict[str, str]:
    return {key: value.decode(errors="replace") for key, value in payload(kind, obj).items()}


def container_env(
    container: Mapping[str, Any],
    fields: PodFields,
    lookup: ObjectLookup,
    allocatable: Mapping[str, str],
) -> dict[str, str]:
    """The variables the pod spec defines for `container` (the image's come first)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        kind, ref = _env_from_source(source)
        obj = lookup(kind, ref["name"])
        if obj is None:
            if ref.get("optional"):
                continue
            raise ConfigError(f'{kind.lower()} "{ref["name"]}" not found')
        prefix = source.get("prefix", "")
        env.update({prefix + key: value for key, value in object_data(kind, obj).items()})
    for variable in container.get("env") or []:
        name = variable["name"]
        if "valueFrom" in variable:
            value = _value_from(variable["valueFrom"], container, fields, lookup, allocatable)
            if value is None:
                continue  # an optional key that does not exist: no variable
            env[name] = value
        else:
            env[name] = expand(variable.get("value", ""), env)
    return env


def _env_from_source(source: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    if "configMapRef" in source:
        return "ConfigMap", source["configMapRef"]
    if "secretRef" in source:
        return "Secret", source["secretRef"]
    raise ConfigError(f"envFrom source {source!r} is not supported")


def _value_from(
    source: Mapping[str, Any],
    container: Mapping[str, Any],
    fields: PodFields,
    lookup: ObjectLookup,
    allocatable: Mapping[str, str],
) -> str | None:
    try:
        if "fieldRef" in source:
            return fields.field(source["fieldRef"]["fieldPath"])
        if "resourceFieldRef" in source:
            ref = source["resourceFieldRef"]
            name = ref.get("containerName") or container["name"]
            return fields.resource(name, ref["resource"], ref.get("divisor"), allocatable)
    except FieldError as error:
        raise ConfigError(str(error)) from None
    for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
        if key in source:
            ref = source[key]
            obj = lookup(kind, ref["name"])
            data = object_data(kind, obj) if obj is not None else None
            if data is not None and ref["key"] in data:
                return data[ref["key"]]
            if ref.get("optional"):
                return None
            missing = f'{kind.lower()} "{ref["name"]}"'
            raise ConfigError(
                f"couldn't find key {ref['key']} in {missing}"
                if data is not None
                else f"{missing} not found"
            )
    raise ConfigError(f"valueFrom {source!r} is not supported")
