"""benchmarks/ is a folder of scripts, not a package: put it on the path for its tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
