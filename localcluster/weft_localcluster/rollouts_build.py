"""Build the Argo Rollouts controller from Go modules, once, into the cache.

The e2e tests run the real controller against the local cluster, to prove Weft's SMI
TrafficSplit support with the progressive-delivery tool users pair it with. Its go.mod
pins the k8s.io modules with replace directives, which bind only the main module, so
`go install` refuses it: a wrapper module (build.py's Bundle) repeats them, read from
the module's own go.mod. The CRDs come from the same module's source
(manifests/crds), read from the module cache: nothing of Argo's is copied here.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from rich.console import Console

from weft_localcluster import build, go_tools, versions
from weft_localcluster.paths import cache_dir

MODULE = "github.com/argoproj/argo-rollouts"
CONTROLLER = "rollouts-controller"

_REPLACE_BLOCK = re.compile(r"^replace \($(.*?)^\)$", re.MULTILINE | re.DOTALL)
_REPLACE_LINE = re.compile(r"^replace (\S+ => \S+(?: \S+)?)$", re.MULTILINE)


def parse_replaces(go_mod: str) -> tuple[tuple[str, str], ...]:
    """The replace directives of a go.mod, as Bundle.replaces: (old, 'new version')."""
    lines = [m.group(1) for m in _REPLACE_LINE.finditer(go_mod)]
    for block in _REPLACE_BLOCK.finditer(go_mod):
        lines += [line.strip() for line in block.group(1).splitlines() if "=>" in line]
    replaces = []
    for line in lines:
        old, new = (side.strip() for side in line.split("=>"))
        if not new.startswith((".", "/")):  # a local path would not exist here
            replaces.append((old, new))
    return tuple(replaces)


def module_dir(version: str = versions.ARGO_ROLLOUTS_VERSION) -> Path:
    """The module's source in the Go module cache, downloaded unless it is there."""
    return go_tools.module_source(MODULE, version)


def bundle_name(version: str = versions.ARGO_ROLLOUTS_VERSION) -> str:
    return f"argo-rollouts-{version}"


def rollouts_bundle(version: str = versions.ARGO_ROLLOUTS_VERSION) -> build.Bundle:
    pkg = f"{MODULE}/utils/version"
    return build.Bundle(
        name=bundle_name(version),
        module=MODULE,
        version=version,
        replaces=parse_replaces((module_dir(version) / "go.mod").read_text()),
        commands=((CONTROLLER, f"{MODULE}/cmd/{CONTROLLER}"),),
        # Its logs and metrics name the version (v + this, as its VERSION file has it);
        # unset it says v99.99.99.
        ldflags=f"-s -w -X {pkg}.version={version.removeprefix('v')}",
    )


def crd_files(version: str = versions.ARGO_ROLLOUTS_VERSION) -> list[Path]:
    """Rollout, AnalysisTemplate, ... CRD manifests, from the module's source."""
    return sorted((module_dir(version) / "manifests" / "crds").glob("*-crd.yaml"))


def ensure_rollouts(console: Console | None = None) -> Path:
    """The controller's binary, built unless the cache has it (BuildError if not)."""
    cached = cache_dir() / "bin" / bundle_name() / CONTROLLER
    if os.access(cached, os.X_OK):  # no module look-up once built
        return cached
    bundle = rollouts_bundle()
    _prefetch(bundle)
    return build.ensure_built(bundle, console) / CONTROLLER


def _prefetch(bundle: build.Bundle) -> None:
    """Resolve and download the modules before taking the build lock, so a download
    does not wait on (or hold up) another Go build; the build then finds them cached."""
    with tempfile.TemporaryDirectory(prefix="weft-prefetch-") as work:
        (Path(work) / "go.mod").write_text(build.wrapper_go_mod(bundle))
        packages = [f"{pkg}@{bundle.version}" for _, pkg in bundle.commands]
        build._run([build.check_go(), "get", *packages], Path(work), Path(work) / "get.log")
