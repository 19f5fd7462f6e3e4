"""Install values: defaults, `--ha`, and `--set key=value` overrides, checked against the
defaults (an unknown key or a value of the wrong type is an error, not ignored)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from weft_api import mesh
from weft_api.identity import DEFAULT_TRUST_DOMAIN
from weft_cli.errors import CliError

Values = dict[str, Any]

HA_REPLICAS = 3


def defaults() -> Values:
    return {
        "image": {
            "repository": mesh.CONTROL_PLANE_IMAGE,
            "tag": mesh.PROXY_VERSION,
            "pullPolicy": "IfNotPresent",
        },
        "clusterDomain": "cluster.local",
        # mesh.ACCESS_MODELS: without a TrafficTarget, "linkerd" applies the default
        # inbound policy, "smi" denies (SMI's default); a namespace may say otherwise.
        "accessModel": mesh.ACCESS_MODEL_LINKERD,
        "identity": {
            "trustDomain": DEFAULT_TRUST_DOMAIN,
            # PEM; all three given, or none (then generated). issuer.external: the
            # issuer Secret is written by someone else (cert-manager): anchors only.
            "trustAnchorsPEM": "",
            "issuer": {"crt": "", "key": "", "external": False},
        },
        "operator": {
            "replicas": 1,
            "cpuRequest": "100m",
            "memoryRequest": "128Mi",
            "memoryLimit": "512Mi",
        },
        # Two: conversion (reads at another version than storage's) needs one up.
        "webhooks": {
            "replicas": 2,
            "cpuRequest": "50m",
            "memoryRequest": "64Mi",
            "memoryLimit": "256Mi",
        },
        # The injected proxy: the slim image (Dockerfile target `proxy`), its dependencies only.
        "proxy": {
            "image": mesh.PROXY_IMAGE,
            "version": mesh.PROXY_VERSION,
            # Who may tap the proxies: "cli", `weft tap` with the ServiceAccount weft-cli's
            # certificate; "" opens tap ports to anyone on the pod network.
            "tapClients": "cli",
        },
        "ha": False,
    }


def _leaf_keys(values: Values, prefix: str = "") -> list[str]:
    keys = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        keys += _leaf_keys(value, f"{path}.") if isinstance(value, dict) else [path]
    return keys


def _coerce(key: str, text: str, default: Any) -> Any:
    if isinstance(default, bool):
        if text.lower() not in ("true", "false"):
            raise CliError(f"{key} must be true or false, not {text!r}")
        return text.lower() == "true"
    if isinstance(default, int):
        try:
            number = int(text)
        except ValueError:
            raise CliError(f"{key} must be a whole number, not {text!r}") from None
        if number < 0:
            raise CliError(f"{key} must not be negative")
        return number
    return text


def apply_setting(values: Values, assignment: str) -> None:
    """Apply `key=value` to `values`, as the type of the key's default."""
    key, equals, text = assignment.partition("=")
    if not equals or not key:
        raise CliError(f"--set wants key=value, not {assignment!r}")
    *parents, leaf = key.split(".")
    node = values
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            raise _unknown(key)
        node = child
    if leaf not in node or isinstance(node[leaf], dict):
        raise _unknown(key)
    node[leaf] = _coerce(key, text, node[leaf])


def _unknown(key: str) -> CliError:
    known = ", ".join(_leaf_keys(defaults()))
    return CliError(f"unknown value {key!r}; known values: {known}")


def resolve(ha: bool, settings: Iterable[str] = ()) -> Values:
    """Defaults, then `--ha`, then each `key=value` in order (so they win over `--ha`)."""
    values = defaults()
    if ha:
        values["ha"] = True
        values["operator"]["replicas"] = HA_REPLICAS
    for assignment in settings:
        apply_setting(values, assignment)
    if values["accessModel"] not in mesh.ACCESS_MODELS:
        known = ", ".join(mesh.ACCESS_MODELS)
        raise CliError(f"accessModel must be one of {known}, not {values['accessModel']!r}")
    return values
