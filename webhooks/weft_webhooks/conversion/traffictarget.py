"""TrafficTarget: v1alpha1's top-level fields <-> `spec` (v1alpha2+).

- v1alpha1 keeps `destination`, `specs` (the rules) and `sources` at the top level;
  its destination port is a string (the Go type), later an integer.
- v1alpha4 has v1alpha3's layout (the hub), subjects with an optional `group`.
- v1alpha1 and v1alpha2 cannot name UDPRoute rules, and only v1alpha1 takes a named
  destination port: both are stashed in annotations by the versions without them.
"""

from __future__ import annotations

from typing import Any

from weft_webhooks.conversion.stash import stash, unstash

UDP_RULES_ANNOTATION = "access.weft.dev/udp-rules"
NAMED_PORT_ANNOTATION = "access.weft.dev/destination-port"
_WITHOUT_UDP = ("v1alpha1", "v1alpha2")


def to_hub(obj: dict[str, Any], version: str) -> dict[str, Any]:
    """Any served version -> the v1alpha3 layout.

    Objects stored before conversion existed may hold v1alpha1's layout at any version.
    """
    if "spec" not in obj and "destination" in obj:
        obj["spec"] = {
            "destination": obj.pop("destination"),
            "rules": obj.pop("specs", []),
            "sources": obj.pop("sources", []),
        }
    spec = obj.setdefault("spec", {})
    destination = spec.get("destination") or {}
    port = destination.get("port")
    if isinstance(port, str):
        if port.isdigit():
            destination["port"] = int(port)
        else:
            stash(obj, NAMED_PORT_ANNOTATION, destination.pop("port"))
    udp_rules = unstash(obj, UDP_RULES_ANNOTATION) if version in _WITHOUT_UDP else None
    if udp_rules:
        spec["rules"] = [*(spec.get("rules") or []), *udp_rules]
    return obj


def from_hub(obj: dict[str, Any], version: str) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    if version in _WITHOUT_UDP:
        rules = spec.get("rules") or []
        udp = [rule for rule in rules if rule.get("kind") == "UDPRoute"]
        if udp:
            stash(obj, UDP_RULES_ANNOTATION, udp)
            spec["rules"] = [rule for rule in rules if rule.get("kind") != "UDPRoute"]
    if version != "v1alpha1":
        return obj
    del obj["spec"]
    destination = dict(spec.get("destination") or {})
    named_port = unstash(obj, NAMED_PORT_ANNOTATION)
    if named_port is not None:
        destination["port"] = named_port
    elif "port" in destination:
        destination["port"] = str(destination["port"])
    obj["destination"] = destination
    for field, value in (("specs", spec.get("rules")), ("sources", spec.get("sources"))):
        if value:  # optional at v1alpha1, required (possibly empty) later
            obj[field] = value
    return obj
