"""The README's main job, as CI can run it: `make demo ARGS=--once` on a cluster of its
own brings the mesh up as a user installs it (`weft install | kubectl apply -f -`: the
control plane as pods), promotes a healthy canary to all traffic, rolls a broken one
back, and leaves nothing behind after `weft cluster down`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WEFT = Path(sys.executable).parent / "weft"


def test_make_demo_once_promotes_a_healthy_canary_and_rolls_back_a_broken_one(
    tmp_path: Path,
) -> None:
    state = tmp_path / "demo-cluster"
    env = {**os.environ, "WEFT_CLUSTER_DIR": str(state)}
    args = "--once --port=0 --window=4"
    try:
        ran = subprocess.run(
            ["make", "-C", str(ROOT), "demo", f"ARGS={args}"],
            env=env, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
    finally:
        down = subprocess.run(
            [str(WEFT), "cluster", "down"], env=env, capture_output=True, text=True, check=False
        )
    output = ran.stdout + ran.stderr
    assert ran.returncode == 0, output[-4000:]
    assert "canary weight 100% - done" in output
    assert "rollback" in output
    assert "weft cluster down" in output  # it says how to tear down
    assert "weft dashboard" in output  # and how to open the dashboard
    assert "Weft installed: the operator and the webhooks run as pods" in output
    assert down.returncode == 0, down.stderr
    assert not state.exists() or not any(state.iterdir())
