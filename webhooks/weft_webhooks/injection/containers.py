"""The injected containers and volumes, rendered from the jinja2 templates beside this module."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import jinja2
import yaml

from weft_api import mesh
from weft_api.identity import identity_name, spiffe_id
from weft_api.mesh import PortRange, ProxyEnv, format_port_ranges
from weft_webhooks.injection.options import ProxyOptions
from weft_webhooks.injection.settings import InjectorSettings, Resources

# proxy-init's writable /run (the iptables lock); nothing else of the pod uses it.
INIT_RUN_VOLUME = "weft-init-run"

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("weft_webhooks.injection", "templates"),
    undefined=jinja2.StrictUndefined,  # a missing value is an error, not an empty string
    keep_trailing_newline=True,
    autoescape=False,  # YAML, not HTML
)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it


@dataclass(frozen=True, slots=True)
class Injected:
    """What injection adds to a pod, in the order it adds them."""

    init_containers: tuple[dict[str, Any], ...]  # proxy-init first, then the proxy
    volumes: tuple[dict[str, Any], ...]


# Pods of one workload share their options: rendering (YAML parsing, mostly) is done
# once per distinct (settings, options). Callers never mutate what this returns.
@functools.lru_cache(maxsize=256)
def render(settings: InjectorSettings, options: ProxyOptions) -> Injected:
    # The admin port bypasses the proxy so that the kubelet's probes reach it directly,
    # and the tap port so that its own mTLS reaches it (the inbound proxy would
    # terminate a handshake for the proxy's identity itself).
    skip_inbound = (
        PortRange(mesh.PROXY_TAP_PORT, mesh.PROXY_TAP_PORT),
        PortRange(mesh.PROXY_ADMIN_PORT, mesh.PROXY_ADMIN_PORT),
    )
    values = {
        "mesh": mesh,
        "env": ProxyEnv,
        "settings": settings,
        "options": options,
        # Expanded by the kubelet from the downward-API variables of the same container.
        "identity_name": identity_name(
            f"$({ProxyEnv.POD_SERVICE_ACCOUNT})",
            f"$({ProxyEnv.POD_NAMESPACE})",
            settings.trust_domain,
        ),
        "spiffe_id": spiffe_id(
            f"$({ProxyEnv.POD_SERVICE_ACCOUNT})",
            f"$({ProxyEnv.POD_NAMESPACE})",
            settings.trust_domain,
        ),
        "opaque_ports": format_port_ranges(options.opaque_ports),
        "skip_inbound_ports": format_port_ranges(skip_inbound + options.skip_inbound_ports),
        "skip_outbound_ports": format_port_ranges(options.skip_outbound_ports),
        "proxy_resources": _resources(settings.proxy_resources),
        "init_resources": _resources(settings.init_resources),
        "init_run_volume": INIT_RUN_VOLUME,
    }
    return Injected(
        init_containers=(_load("init", values), _load("proxy", values)),
        volumes=tuple(_load("volumes", values)),
    )


def _load(template: str, values: dict[str, Any]) -> Any:
    text = _TEMPLATES.get_template(f"{template}.yaml.j2").render(values)
    return yaml.load(text, Loader=_Loader)  # a safe loader, C or Python


def _resources(resources: Resources) -> dict[str, dict[str, str]]:
    wanted = {
        "requests": {"cpu": resources.cpu_request, "memory": resources.memory_request},
        "limits": {"cpu": resources.cpu_limit, "memory": resources.memory_limit},
    }
    kept = {
        kind: {name: value for name, value in values.items() if value is not None}
        for kind, values in wanted.items()
    }
    return {kind: values for kind, values in kept.items() if values}
