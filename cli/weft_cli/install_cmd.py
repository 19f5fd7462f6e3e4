"""`weft install`, `weft upgrade` and `weft uninstall`: manifests to stdout, for
`kubectl apply -f -` (or `kubectl delete -f -`) and for GitOps repositories."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from weft_api import mesh
from weft_cli import output
from weft_cli.errors import CliError
from weft_cli.install import values
from weft_cli.options import add_kube_options, add_weft_namespace_option


def register(topics: Any) -> None:
    install = topics.add_parser(
        "install",
        help="render Weft's install manifests (pipe to kubectl apply -f -)",
        description="Render the CRDs, RBAC, operator, webhooks and mesh identity. "
        "The identity (trust anchor and issuer) is generated unless given.",
    )
    install.add_argument(
        "--crds",
        action="store_true",
        help="only the CRDs, as shipped (conversion strategy None: they work without the "
        "webhooks; the full install switches three of them to the conversion webhook)",
    )
    _add_value_options(install)
    _add_format_option(install)
    add_weft_namespace_option(install)
    install.set_defaults(run=run_install)

    upgrade = topics.add_parser(
        "upgrade",
        help="render the install for a cluster running Weft, keeping its identity",
        description="Render what `weft install` renders, with the trust anchors and issuer "
        "read from the running mesh (Secret weft-identity-issuer, ConfigMap "
        "weft-identity-trust-roots): `weft upgrade | kubectl apply -f -` keeps every "
        "proxy's trust. Values are this command's defaults and options, not the running "
        "install's. Identity values given with --set/--set-file replace the running "
        "identity (a rotation).",
    )
    _add_value_options(upgrade)
    _add_format_option(upgrade)
    add_weft_namespace_option(upgrade)
    add_kube_options(upgrade)
    upgrade.set_defaults(run=run_upgrade)

    uninstall = topics.add_parser(
        "uninstall",
        help="render what to delete (pipe to kubectl delete -f -)",
        description="List Weft's objects for deletion. Your TrafficSplits, "
        "ServiceProfiles and other custom resources stay unless the CRDs go too.",
    )
    uninstall.add_argument(
        "--include-crds",
        "--all",
        dest="include_crds",
        action="store_true",
        help="also delete the CRDs, and with them every resource of their kinds",
    )
    _add_format_option(uninstall)
    add_weft_namespace_option(uninstall)
    uninstall.set_defaults(run=run_uninstall)


def _add_value_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ha", action="store_true", help="3 operator replicas, spread over nodes, with a PDB"
    )
    parser.add_argument(
        "--access-model",
        choices=mesh.ACCESS_MODELS,
        help="without a TrafficTarget: linkerd (default) applies the default inbound "
        "policy, smi denies, as SMI specifies; the same as --set accessModel=..., and a "
        f"namespace's {mesh.ACCESS_MODEL_ANNOTATION} annotation overrides it",
    )
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a value, e.g. operator.replicas=2 (repeat)",
    )
    parser.add_argument(
        "--set-file",
        dest="file_settings",
        action="append",
        default=[],
        metavar="KEY=PATH",
        help="a value from a file, e.g. identity.issuer.crt=issuer.crt (repeat)",
    )


def _add_format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=(output.YAML, output.JSON),
        default=output.YAML,
        help="yaml (default), or json: one v1 List",
    )


def _file_settings(assignments: list[str]) -> list[str]:
    """`key=path` as `key=<the file's text>`."""
    read = []
    for assignment in assignments:
        key, _, path = assignment.partition("=")
        try:
            read.append(f"{key}={Path(path).read_text()}")
        except OSError as error:
            raise CliError(f"--set-file {key}: cannot read {path}: {error.strerror}") from None
    return read


def _write(manifest: str, fmt: str) -> None:
    if fmt == output.JSON:
        items = [doc for doc in yaml.safe_load_all(manifest) if doc]
        manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=2)
        manifest += "\n"
    sys.stdout.write(manifest)


def _values(args: argparse.Namespace) -> values.Values:
    chosen = [f"accessModel={args.access_model}"] if args.access_model else []
    return values.resolve(args.ha, [*_file_settings(args.file_settings), *chosen, *args.settings])


def run_install(args: argparse.Namespace) -> int:
    from weft_cli.install import identity, render  # the operator's CA code: loaded when used

    if args.crds:
        _write(render.crds_only(), args.output)
        return 0
    resolved = _values(args)
    mesh_identity = identity.from_values(resolved, datetime.datetime.now(datetime.UTC))
    _write(render.install(args.weft_namespace, resolved, mesh_identity), args.output)
    if mesh_identity.generated:
        output.stderr().print(
            "generated a trust anchor and an issuer for the mesh; the output holds the "
            "issuer's key: keep it secret",
        )
    return 0


def run_upgrade(args: argparse.Namespace) -> int:
    import asyncio

    from weft_cli.install import identity, render, running
    from weft_cli.kube import KubeOptions

    resolved = _values(args)
    now = datetime.datetime.now(datetime.UTC)
    if identity.given_in_values(resolved):
        mesh_identity = identity.from_values(resolved, now)
        kept = "the identity given in values (it replaces the running one)"
    else:
        secret, roots = asyncio.run(running.read(KubeOptions.of(args), args.weft_namespace))
        mesh_identity = running.identity_of(secret, roots, now)
        kept = "the running mesh's trust anchors and issuer"
        if mesh_identity.external:
            kept += " (the issuer Secret stays its writer's: cert-manager)"
    _write(render.install(args.weft_namespace, resolved, mesh_identity), args.output)
    note = f"rendered with {kept}"
    if not mesh_identity.external:
        note += "; the output holds the issuer's key: keep it secret"
    output.stderr().print(note)
    return 0


def run_uninstall(args: argparse.Namespace) -> int:
    from weft_cli.install import render

    _write(render.uninstall(args.weft_namespace, values.defaults(), args.include_crds), args.output)
    if not args.include_crds:
        output.stderr().print(
            "the CRDs and your resources stay; afterwards switch TrafficSplit, HTTPRouteGroup "
            "and TrafficTarget back from the removed conversion webhook with: "
            "weft install --crds | kubectl apply -f -"
        )
    return 0
