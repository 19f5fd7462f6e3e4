"""`weft` from a base install (the proxy's dependencies only) says which extra it needs."""

from __future__ import annotations

import subprocess
import sys

# Runs `python -m weft_cli` with `rich` (a control-plane dependency) unimportable, as it
# is after a plain `pip install weft`.
WITHOUT_RICH = """
import importlib.abc, runpy, sys

class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "rich" or name.startswith("rich."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Absent())
sys.argv = ["weft", "check"]
runpy.run_module("weft_cli", run_name="__main__")
"""


def test_weft_without_the_control_plane_extra_names_the_extra() -> None:
    ran = subprocess.run(
        [sys.executable, "-c", WITHOUT_RICH], capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 1
    assert ran.stderr == (
        "weft: the CLI needs the control-plane extra (rich is not installed): "
        "pip install 'weft[control-plane]'\n"
    )
