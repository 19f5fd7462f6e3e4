"""Go programs the tests and users run beside the cluster (helm), `go install`ed once
from the Go module proxy into the cache, like the cluster's own binaries.

A tool whose module can be `go install`ed (no replace directives in its go.mod) needs
no wrapper module: `go install module/cmd@version` with GOBIN pointing into the cache.
Each tool and version has its own folder, which is either complete or absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from weft_localcluster import build, versions
from weft_localcluster.paths import cache_dir


@dataclass(frozen=True)
class GoTool:
    name: str  # the binary's name
    package: str  # the main package, as `go install` takes it
    version: str

    @property
    def folder(self) -> Path:
        return cache_dir() / "tools" / f"{self.name}-{self.version}"

    @property
    def binary(self) -> Path:
        return self.folder / self.name


HELM = GoTool("helm", "helm.sh/helm/v4/cmd/helm", versions.HELM_VERSION)
FLAGGER_MODULE = "github.com/fluxcd/flagger"
FLAGGER = GoTool("flagger", f"{FLAGGER_MODULE}/cmd/flagger", versions.FLAGGER_VERSION)


def ensure_tool(tool: GoTool, console: Console | None = None) -> Path:
    """The tool's binary, built unless the cache has it (BuildError, with the log's
    tail, if Go cannot build it)."""
    if os.access(tool.binary, os.X_OK):
        return tool.binary
    console = console or Console(stderr=True)
    go = build.check_go()
    with build._build_lock():
        if os.access(tool.binary, os.X_OK):  # built by whoever held the lock before us
            return tool.binary
        staging = tool.folder.with_name(tool.folder.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        log = staging / "build.log"
        console.print(
            f"[bold]Building {tool.name} {tool.version}[/] from Go modules "
            f"(once; cached in {tool.folder})"
        )
        started = time.monotonic()
        cmd = [go, "install", "-trimpath", "-ldflags", "-s -w", f"{tool.package}@{tool.version}"]
        env = {**build._go_env(), "GOBIN": str(staging), "GOFLAGS": "-buildvcs=false"}
        with open(log, "w") as out, console.status(f"go install {tool.package}@{tool.version}"):
            result = subprocess.run(cmd, cwd=staging, env=env, stdout=out, stderr=out, check=False)
        if result.returncode != 0:
            tail = "\n".join(log.read_text().splitlines()[-15:])
            raise build.BuildError(f"building {tool.name} failed (full log: {log}):\n{tail}")
        shutil.rmtree(tool.folder, ignore_errors=True)
        staging.rename(tool.folder)  # atomic: a folder is either complete or absent
        console.print(f"built {tool.name} in {time.monotonic() - started:.0f}s")
        return tool.binary


def module_source(module: str, version: str) -> Path:
    """The module's source tree in Go's module cache (read-only), downloaded from the
    module proxy on first use: where a tool's own manifests (Flagger's CRDs) are read."""
    go = build.check_go()
    result = subprocess.run(
        [go, "mod", "download", "-json", f"{module}@{version}"],
        cwd=cache_dir(),  # outside any go.mod, whose go.sum it would otherwise touch
        env=build._go_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise build.BuildError(f"go mod download {module}@{version} failed: {result.stdout}")
    return Path(json.loads(result.stdout)["Dir"])
