"""Run `helm` (built from Go modules into the cache: weft_localcluster.go_tools) as a
user does, on the charts of this repository, with a Helm home of its own so the user's
repositories and plugins play no part."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
CRDS_CHART = REPOSITORY / "charts" / "weft-crds"
CONTROL_PLANE_CHART = REPOSITORY / "charts" / "weft-control-plane"


@dataclass(frozen=True)
class Helm:
    binary: Path
    home: Path

    def run(
        self, *args: str, kubeconfig: Path | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        if kubeconfig is not None:
            env["KUBECONFIG"] = str(kubeconfig)
        return subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )

    def ok(self, *args: str, kubeconfig: Path | None = None, timeout: float = 300) -> str:
        ran = self.run(*args, kubeconfig=kubeconfig, timeout=timeout)
        assert ran.returncode == 0, f"helm {' '.join(args[:2])} failed:\n{ran.stderr}"
        return ran.stdout
