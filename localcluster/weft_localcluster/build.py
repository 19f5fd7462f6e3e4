"""Build etcd and the Kubernetes control plane from Go modules, once, into the cache.

Neither k8s.io/kubernetes nor go.etcd.io/etcd/server/v3 can be `go install`ed: their
go.mod files replace sibling modules with local paths. A tiny wrapper module that
requires them (and, for Kubernetes, replaces each staging module with its published
twin) builds the real commands with the machine's Go toolchain.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from weft_localcluster import versions
from weft_localcluster.paths import cache_dir


class BuildError(RuntimeError):
    """The binaries could not be built; the message says why and what to do."""


@dataclass(frozen=True)
class Bundle:
    """One wrapper module, built into one folder of the cache."""

    name: str
    module: str
    version: str
    replaces: tuple[tuple[str, str], ...]
    commands: tuple[tuple[str, str], ...]  # (binary name, package path)
    ldflags: str = "-s -w"

    @property
    def binaries(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.commands)


def kubernetes_bundle(version: str = versions.KUBERNETES_VERSION) -> Bundle:
    staging = versions.staging_version(version)
    major, minor = version.lstrip("v").split(".")[:2]
    pkg = "k8s.io/component-base/version"
    built = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # Without these, /version reports v0.0.0-master and clients warn about skew.
    ldflags = (
        f"-s -w -X {pkg}.gitVersion={version} -X {pkg}.gitMajor={major}"
        f" -X {pkg}.gitMinor={minor} -X {pkg}.gitTreeState=clean -X {pkg}.buildDate={built}"
    )
    return Bundle(
        name=f"kubernetes-{version}",
        module="k8s.io/kubernetes",
        version=version,
        replaces=tuple(
            (f"k8s.io/{m}", f"k8s.io/{m} {staging}") for m in versions.KUBERNETES_STAGING_MODULES
        ),
        commands=tuple((c, f"k8s.io/kubernetes/cmd/{c}") for c in versions.KUBERNETES_COMMANDS),
        ldflags=ldflags,
    )


def etcd_bundle(version: str = versions.ETCD_VERSION) -> Bundle:
    return Bundle(
        name=f"etcd-{version}",
        module="go.etcd.io/etcd/server/v3",
        version=version,
        replaces=(),
        commands=(("etcd", "go.etcd.io/etcd/server/v3"),),
    )


def prometheus_bundle(version: str = versions.PROMETHEUS_VERSION) -> Bundle:
    pkg = "github.com/prometheus/common/version"
    release = "2." + version.removeprefix("v0.")  # module v0.53.2 is Prometheus 2.53.2
    return Bundle(
        name=f"prometheus-{version}",
        module="github.com/prometheus/prometheus",
        version=version,
        # Its go.mod replaces klog with a go-kit logger; a requiring module must too.
        replaces=(
            ("k8s.io/klog", "github.com/simonpasquier/klog-gokit v0.3.0"),
            ("k8s.io/klog/v2", "github.com/simonpasquier/klog-gokit/v3 v3.3.0"),
        ),
        commands=(("prometheus", "github.com/prometheus/prometheus/cmd/prometheus"),),
        ldflags=f"-s -w -X {pkg}.Version={release} -X {pkg}.Branch=HEAD",
    )


def prometheus_path() -> Path:
    """Where the built Prometheus is (or will be) cached."""
    return bin_dir(prometheus_bundle()) / "prometheus"


def ensure_prometheus(console: Console | None = None) -> Path:
    """The built Prometheus's binary (BuildError if it cannot be built)."""
    return ensure_built(prometheus_bundle(), console) / "prometheus"


def try_prometheus(console: Console | None = None) -> Path | None:
    """Prometheus with Kubernetes discovery (`weft viz install`'s, on the local cluster),
    or None with a warning. Not part of `ensure_binaries`: it takes long to build (over
    30 minutes on a loaded 2-core machine), and only the dashboard needs it; whoever
    installs viz on the local cluster builds it first (the demo, the tests)."""
    try:
        return ensure_prometheus(console)
    except (BuildError, OSError) as error:
        (console or Console(stderr=True)).print(
            f"[yellow]warning:[/] Prometheus was not built, so `weft viz install`'s Prometheus "
            f"will not start on the local cluster: {error}",
            highlight=False,
        )
        return None


def wrapper_go_mod(bundle: Bundle) -> str:
    """The go.mod of the wrapper module that builds `bundle`."""
    go = ".".join(str(n) for n in versions.MIN_GO_VERSION)
    lines = [
        f"module weft.local/build/{bundle.name}",
        "",
        f"go {go}",
        "",
        f"require {bundle.module} {bundle.version}",
    ]
    if bundle.replaces:
        lines += ["", "replace ("]
        lines += [f"\t{old} => {new}" for old, new in bundle.replaces]
        lines.append(")")
    return "\n".join(lines) + "\n"


def parse_go_version(text: str) -> tuple[int, int]:
    """'go1.26.8' (from `go env GOVERSION`) -> (1, 26)."""
    match = re.match(r"go(\d+)\.(\d+)", text.strip())
    if not match:
        raise BuildError(f"cannot read the Go version from {text.strip()!r}")
    return int(match.group(1)), int(match.group(2))


def check_go() -> str:
    """Return the Go binary to use, or say exactly what is missing."""
    need = ".".join(str(n) for n in versions.MIN_GO_VERSION)
    go = shutil.which("go")
    if go is None:
        raise BuildError(
            f"Go is not installed (no `go` on PATH). The local cluster builds etcd and "
            f"Kubernetes {versions.KUBERNETES_VERSION} from source and needs Go >= {need}: "
            "install it from your distribution or go.dev, then run the command again."
        )
    out = subprocess.run(
        [go, "env", "GOVERSION"], capture_output=True, text=True, check=False
    ).stdout
    found = parse_go_version(out)
    if found < versions.MIN_GO_VERSION:
        raise BuildError(
            f"Go {found[0]}.{found[1]} at {go} is too old: Kubernetes "
            f"{versions.KUBERNETES_VERSION} needs Go >= {need}. Install a newer Go."
        )
    return go


def bin_dir(bundle: Bundle) -> Path:
    return cache_dir() / "bin" / bundle.name


def is_built(bundle: Bundle) -> bool:
    folder = bin_dir(bundle)
    return all(os.access(folder / b, os.X_OK) for b in bundle.binaries)


@contextmanager
def _build_lock() -> Iterator[None]:
    """Two concurrent first runs (a test session and the demo) must not build twice."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    # A go.work of the user's, or an automatic toolchain download, must not change the build.
    env.update(GOWORK="off", GOTOOLCHAIN="local", CGO_ENABLED="0", GOFLAGS="-mod=mod")
    return env


def _run(cmd: list[str], cwd: Path, log: Path) -> None:
    with open(log, "a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        result = subprocess.run(cmd, cwd=cwd, env=_go_env(), stdout=out, stderr=out, check=False)
    if result.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise BuildError(f"`{' '.join(cmd[:3])} ...` failed (full log: {log}):\n{tail}")


def _count_deps(go: str, package: str, cwd: Path) -> int:
    out = subprocess.run(
        [go, "list", "-deps", package],
        cwd=cwd,
        env=_go_env(),
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return max(1, len(out.split()))


def _build_command(
    go: str, bundle: Bundle, name: str, package: str, work: Path, log: Path, progress: Progress
) -> None:
    total = _count_deps(go, package, work)
    task = progress.add_task(f"building {name}", total=total)
    cmd = [go, "build", "-v", "-trimpath", "-ldflags", bundle.ldflags, "-o", f"out/{name}", package]
    with open(log, "a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        proc = subprocess.Popen(
            cmd, cwd=work, env=_go_env(), stdout=out, stderr=subprocess.PIPE, text=True
        )
        assert proc.stderr is not None
        for line in proc.stderr:  # `go build -v` names each package as it compiles it
            out.write(line)
            progress.advance(task)
        code = proc.wait()
    progress.update(task, completed=total)
    if code != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise BuildError(f"building {name} failed (full log: {log}):\n{tail}")


def ensure_built(bundle: Bundle, console: Console | None = None) -> Path:
    """Build `bundle` unless the cache has it; return the folder of its binaries."""
    if is_built(bundle):
        return bin_dir(bundle)
    console = console or Console(stderr=True)
    go = check_go()
    with _build_lock():
        if is_built(bundle):  # built by whoever held the lock before us
            return bin_dir(bundle)
        work = cache_dir() / "build" / bundle.name
        work.mkdir(parents=True, exist_ok=True)
        log = work / "build.log"
        (work / "go.mod").write_text(wrapper_go_mod(bundle))
        started = time.monotonic()
        console.print(
            f"[bold]Building {bundle.name}[/] from Go modules (once; cached in {bin_dir(bundle)})"
        )
        packages = [f"{pkg}@{bundle.version}" for _, pkg in bundle.commands]
        with console.status(f"resolving {bundle.module} {bundle.version} ..."):
            _run([go, "get", *packages], work, log)
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as progress:
            for name, package in bundle.commands:
                _build_command(go, bundle, name, package, work, log, progress)
        target = bin_dir(bundle)
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(work / "out", staging)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)  # atomic: a folder is either complete or absent
        console.print(f"built {bundle.name} in {time.monotonic() - started:.0f}s")
        return target


@dataclass(frozen=True)
class Binaries:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    kubelet_streaming: Path | None = None  # optional: exec and port-forward need it

    @property
    def kubernetes_dir(self) -> Path:
        return self.kube_apiserver.parent


def ensure_binaries(console: Console | None = None) -> Binaries:
    etcd = ensure_built(etcd_bundle(), console)
    kube = ensure_built(kubernetes_bundle(), console)
    from weft_localcluster.streaming_build import try_streaming  # it builds on this module

    return Binaries(
        etcd=etcd / "etcd",
        kube_apiserver=kube / "kube-apiserver",
        kube_controller_manager=kube / "kube-controller-manager",
        kube_scheduler=kube / "kube-scheduler",
        kubectl=kube / "kubectl",
        kubelet_streaming=try_streaming(console),
    )
