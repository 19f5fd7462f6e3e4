"""`weft inject FILE|-` and `weft uninject FILE|-`: workload manifests, for GitOps.

`inject` adds `weft.dev/inject: enabled` to every pod template (the webhook then
injects the pods with the cluster's settings), or with `--manual` the whole proxy, as
the cluster's webhook would add it: its image, trust anchors and namespace annotations
are read from the cluster unless `--ignore-cluster`. `uninject` removes what either
form added. Both read YAML (one or many documents, Lists too), write YAML to stdout
and a line per workload to stderr. Comments and key order beyond YAML's are not kept.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.markup import escape

from weft_cli.errors import CliError
from weft_cli.options import add_kube_options, add_weft_namespace_option
from weft_webhooks.injection.decision import Outcome
from weft_webhooks.injection.manifests import (
    Removal,
    Report,
    annotate_manifests,
    inject_manifests,
    uninject_manifests,
)
from weft_webhooks.injection.settings import InjectorSettings

DEFAULT_NAMESPACE = "default"  # of a workload whose manifest names none, as kubectl has it


def register(topics: Any) -> None:
    inject = topics.add_parser(
        "inject",
        help="add the Weft proxy to workload manifests",
        description="Annotate pod templates for injection (default), or add the proxy "
        "itself (--manual) with the settings of the Weft installed in the cluster.",
    )
    inject.add_argument("file", help="a YAML file, or - for stdin")
    inject.add_argument(
        "--manual",
        action="store_true",
        help="add the proxy's containers and volumes instead of the annotation",
    )
    inject.add_argument(
        "--ignore-cluster",
        action="store_true",
        help="with --manual: do not read the installed settings; use flags and defaults",
    )
    inject.add_argument(
        "--trust-anchors-file",
        metavar="PEM",
        help="with --manual: the mesh's trust anchors (default: the cluster's)",
    )
    inject.add_argument(
        "-n",
        "--namespace",
        default=DEFAULT_NAMESPACE,
        help="namespace of workloads whose manifest names none (its annotations apply)",
    )
    group = inject.add_argument_group("injected proxy (with --manual; default: the cluster's)")
    group.add_argument("--proxy-image", help="image, without tag")
    group.add_argument("--proxy-version", help="image tag")
    group.add_argument("--cluster-domain")
    group.add_argument("--trust-domain")
    add_weft_namespace_option(inject)
    add_kube_options(inject)
    inject.set_defaults(run=run_inject)

    uninject = topics.add_parser(
        "uninject", help="remove the Weft proxy (or its annotation) from workload manifests"
    )
    uninject.add_argument("file", help="a YAML file, or - for stdin")
    uninject.set_defaults(run=run_uninject)


def _read(source: str) -> list[Any]:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except (OSError, yaml.YAMLError) as exc:
        raise CliError(f"cannot read {source}: {exc}") from None


def _write(documents: list[Any], reports: list[Report]) -> int:
    sys.stdout.write(yaml.safe_dump_all(documents, sort_keys=False, explicit_start=True))
    err = Console(stderr=True, highlight=False)
    for report in reports:
        err.print(_describe(report))
    return 0


def run_inject(args: argparse.Namespace) -> int:
    documents = _read(args.file)
    if not args.manual:
        return _write(*annotate_manifests(documents))
    settings, annotations = _manual_settings(args, documents)
    injected, reports = inject_manifests(
        documents, settings, lambda namespace: annotations.get(namespace or args.namespace, {})
    )
    return _write(injected, reports)


def run_uninject(args: argparse.Namespace) -> int:
    return _write(*uninject_manifests(_read(args.file)))


def _manual_settings(
    args: argparse.Namespace, documents: list[Any]
) -> tuple[InjectorSettings, dict[str, dict[str, str]]]:
    """The cluster's settings (unless --ignore-cluster), then the flags given."""
    settings = InjectorSettings(control_plane_namespace=args.weft_namespace)
    annotations: dict[str, dict[str, str]] = {}
    if not args.ignore_cluster:
        namespaces = {_namespace_of(doc) or args.namespace for doc in _all_workloads(documents)}
        settings, annotations = asyncio.run(_read_cluster(args, namespaces))
    flags = {
        "image": args.proxy_image,
        "version": args.proxy_version,
        "cluster_domain": args.cluster_domain,
        "trust_domain": args.trust_domain,
    }
    settings = replace(settings, **{k: v for k, v in flags.items() if v is not None})
    if args.trust_anchors_file:
        try:
            pem = Path(args.trust_anchors_file).read_text().strip()
        except OSError as exc:
            raise CliError(f"cannot read {args.trust_anchors_file}: {exc}") from None
        if "BEGIN CERTIFICATE" not in pem:
            raise CliError(f"{args.trust_anchors_file} holds no PEM certificate")
        settings = replace(settings, trust_anchors_pem=pem + "\n")
    if not settings.trust_anchors_pem:
        raise CliError(
            "--manual --ignore-cluster needs --trust-anchors-file: without the mesh's trust "
            "anchors the proxy gets no identity and reaches no meshed peer"
        )
    return settings, annotations


async def _read_cluster(
    args: argparse.Namespace, namespaces: set[str]
) -> tuple[InjectorSettings, dict[str, dict[str, str]]]:
    # The Kubernetes client loads only here: annotating and uninjecting need no cluster.
    from weft_cli.installed import read_installed
    from weft_cli.kube import Kube, KubeOptions

    async with await Kube.connect(KubeOptions.of(args)) as kube:
        installed = await read_installed(kube, args.weft_namespace, namespaces)
    return installed.settings, installed.namespace_annotations


def _all_workloads(documents: list[Any]) -> list[dict[str, Any]]:
    found = []
    for document in documents:
        if isinstance(document, dict):
            found.append(document)
            found += [item for item in document.get("items") or () if isinstance(item, dict)]
    return found


def _namespace_of(document: dict[str, Any]) -> str | None:
    namespace = (document.get("metadata") or {}).get("namespace")
    return str(namespace) if namespace else None


def _describe(report: Report) -> str:
    done = report.outcome in (Outcome.INJECTED, Removal.UNINJECTED)
    mark = f"[green]{report.outcome}[/]" if done else f"skipped ({report.outcome})"
    lines = [f"{report.kind.lower()}/{escape(report.name)}: {mark}"]
    lines += [f"  [yellow]warning:[/] {escape(warning)}" for warning in report.warnings]
    return "\n".join(lines)
