"""Build the node agent's kubelet streaming server (`streaming/main.go`), once, into the cache.

A Go program of Weft's own, on the kubelet's streaming handlers (k8s.io/cri-streaming,
at the staging version of the pinned Kubernetes): `kubectl exec`, `attach` and
`port-forward` arrive from the API server as SPDY, which it serves. Its go.mod and
go.sum are checked in; the build only fetches modules (from the module proxy, or the
module cache). The cache folder is named after a hash of the sources, so an edit
rebuilds; a folder is either complete or absent.

The program is optional: when it cannot be built, the cluster still runs and the node
agent serves `kubectl logs` alone (see `nodeagent/kubelet_api.py`).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from pathlib import Path

from rich.console import Console

from weft_localcluster import build
from weft_localcluster.paths import cache_dir

SOURCE_DIR = Path(__file__).parent / "streaming"
SOURCES = ("go.mod", "go.sum", "main.go")
BINARY = "weft-kubelet-streaming"


def source_hash(source: Path = SOURCE_DIR) -> str:
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update(name.encode() + b"\0" + (source / name).read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def bundle_name(source: Path = SOURCE_DIR) -> str:
    return f"kubelet-streaming-{source_hash(source)}"


def binary_path(source: Path = SOURCE_DIR) -> Path:
    return cache_dir() / "bin" / bundle_name(source) / BINARY


def ensure_streaming(console: Console | None = None, source: Path = SOURCE_DIR) -> Path:
    """The streaming server's binary, built unless the cache has it (BuildError if not)."""
    target = binary_path(source)
    if target.is_file():
        return target
    console = console or Console(stderr=True)
    go = build.check_go()
    with build._build_lock():
        if target.is_file():
            return target
        name = bundle_name(source)
        work = cache_dir() / "build" / name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        for file in SOURCES:
            shutil.copy2(source / file, work / file)
        log = work / "build.log"
        started = time.monotonic()
        with console.status(f"building {BINARY} (once; cached in {target.parent}) ..."):
            _go(
                go,
                ["build", "-trimpath", "-ldflags", "-s -w", "-o", f"out/{BINARY}", "."],
                work,
                log,
            )
        staging = target.parent.with_name(target.parent.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(work / "out", staging)
        shutil.rmtree(target.parent, ignore_errors=True)
        staging.rename(target.parent)  # atomic: complete or absent
        console.print(f"built {BINARY} in {time.monotonic() - started:.0f}s")
        return target


def _go(go: str, args: list[str], work: Path, log: Path) -> None:
    with open(log, "a") as out:
        out.write(f"$ go {' '.join(args)}\n")
        out.flush()
        env = build._go_env()
        env["GOFLAGS"] = "-mod=readonly"  # go.sum is checked in: nothing may change it
        result = subprocess.run([go, *args], cwd=work, env=env, stdout=out, stderr=out, check=False)
    if result.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise build.BuildError(f"`go {' '.join(args[:2])}` failed (full log: {log}):\n{tail}")


def try_streaming(console: Console | None = None) -> Path | None:
    """The binary, or None (with a warning) when it cannot be built: exec and
    port-forward are then unavailable, the rest of the cluster is not."""
    try:
        return ensure_streaming(console)
    except (build.BuildError, OSError) as error:
        (console or Console(stderr=True)).print(
            f"[yellow]warning:[/] the kubelet streaming server was not built, so `kubectl "
            f"exec` and `kubectl port-forward` will not work (`kubectl logs` does): {error}",
            highlight=False,
        )
        return None
