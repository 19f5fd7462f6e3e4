"""kstatus, the library Flux's health checks are built on, as a command the tests run.

`kstatus/main.go` computes `status.Compute` (sigs.k8s.io/cli-utils) for objects read as
JSON on stdin. Its go.mod and go.sum are checked in; it is built from Go modules once,
into the cache folder (outside the clone, named after a hash of the sources so an edit
rebuilds), the way the local cluster's own Go programs are.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from weft_localcluster import build
from weft_localcluster.paths import cache_dir

SOURCE_DIR = Path(__file__).parent / "kstatus"
SOURCES = ("go.mod", "go.sum", "main.go")
BINARY = "kstatus"


def binary_path() -> Path:
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update(name.encode() + b"\0" + (SOURCE_DIR / name).read_bytes() + b"\0")
    return cache_dir() / "tools" / f"kstatus-{digest.hexdigest()[:12]}" / BINARY


def ensure_kstatus() -> Path:
    """The built command (BuildError, with the build log's tail, if Go cannot build it)."""
    target = binary_path()
    if target.is_file():
        return target
    go = build.check_go()
    with build._build_lock():  # a parallel session must not build it twice
        if target.is_file():
            return target
        work = cache_dir() / "build" / target.parent.name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        for name in SOURCES:
            shutil.copy2(SOURCE_DIR / name, work / name)
        env = build._go_env()
        env["GOFLAGS"] = "-mod=readonly"  # go.sum is checked in: nothing may change it
        log = work / "build.log"
        with open(log, "w") as out:
            result = subprocess.run(
                [go, "build", "-trimpath", "-ldflags", "-s -w", "-o", f"out/{BINARY}", "."],
                cwd=work,
                env=env,
                stdout=out,
                stderr=out,
                check=False,
            )
        if result.returncode != 0:
            tail = "\n".join(log.read_text().splitlines()[-15:])
            raise build.BuildError(f"building kstatus failed (log: {log}):\n{tail}")
        staging = target.parent.with_name(target.parent.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(work / "out", staging)
        staging.rename(target.parent)  # atomic: complete or absent
        return target


def kstatus(objects: list[dict[str, Any]]) -> dict[str, str]:
    """`Kind/name` -> kstatus's status (Current, InProgress, Failed, ...) for each object."""
    listing = {"apiVersion": "v1", "kind": "List", "items": objects}
    result = subprocess.run(
        [str(ensure_kstatus())],
        input=json.dumps(listing),
        capture_output=True,
        text=True,
        check=True,
    )
    found = {}
    for line in result.stdout.splitlines():
        name, status = line.split(" ", 2)[:2]
        found[name] = status
    return found
