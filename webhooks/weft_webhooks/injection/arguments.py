"""Command-line options of injection, shared by the webhook server and `weft inject`,
so both inject the same proxy unless told otherwise."""

from __future__ import annotations

import argparse

from weft_webhooks.injection.settings import InjectorSettings

_DEFAULTS = InjectorSettings()


def add_injector_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("injected proxy")
    group.add_argument("--proxy-image", default=_DEFAULTS.image, help="image, without tag")
    group.add_argument("--proxy-version", default=_DEFAULTS.version, help="image tag")
    group.add_argument(
        "--control-plane-namespace",
        default=_DEFAULTS.control_plane_namespace,
        help="namespace of Weft's config and identity services",
    )
    group.add_argument("--cluster-domain", default=_DEFAULTS.cluster_domain)
    group.add_argument("--trust-domain", default=_DEFAULTS.trust_domain)
    group.add_argument(
        "--proxy-tap-clients",
        default=_DEFAULTS.tap_clients,
        help="identities that may tap the proxies, comma-separated; cli: `weft tap`'s; "
        "empty: anyone on the pod network",
    )


def injector_settings(args: argparse.Namespace) -> InjectorSettings:
    return InjectorSettings(
        image=args.proxy_image,
        version=args.proxy_version,
        control_plane_namespace=args.control_plane_namespace,
        cluster_domain=args.cluster_domain,
        trust_domain=args.trust_domain,
        tap_clients=args.proxy_tap_clients,
    )
