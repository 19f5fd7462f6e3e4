"""The samples' own packages (samples/<topic>/<package>) import as their images run them."""

from __future__ import annotations

import sys
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
sys.path.insert(0, str(SAMPLES / "01-bookshop"))
