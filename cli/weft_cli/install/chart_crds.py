"""The templates of the `weft-crds` Helm chart, generated from the CRDs `weft install`
ships (crds/), so the chart cannot carry a CRD of its own.

Each CRD file becomes one template, unchanged but for the converted CRDs, whose
`conversion: strategy: None` block becomes an `include` of the chart's helper: the
conversion webhook of the control plane namespace, or None (`conversionWebhook=false`).
tests/cli/test_charts.py checks the chart's files are what this module writes, and
that `helm template` of both charts renders what `weft install` renders.

Regenerate after editing crds/:  python -m weft_cli.install.chart_crds charts/weft-crds
"""

from __future__ import annotations

import sys
from pathlib import Path

from weft_cli import manifests
from weft_cli.install import render
from weft_webhooks.endpoints import CONVERTED_CRDS

_INCLUDE = '  conversion:\n    {{- include "weft-crds.conversion" . | nindent 4 }}\n'
_GENERATED = "# Generated from crds/{source} by weft_cli.install.chart_crds: edit that file.\n"


def _template(path: Path) -> str:
    text = path.read_text()
    if "{{" in text:  # Helm would read it as a template action
        raise ValueError(f"{path.name} holds '{{{{': escape it for the chart")
    if render.crd_name(text) in CONVERTED_CRDS:
        if text.count(render.NO_CONVERSION) != 1:
            raise ValueError(f"{path.name}: expected one `conversion: strategy: None` block")
        text = text.replace(render.NO_CONVERSION, _INCLUDE)
    return _GENERATED.format(source=path.name) + text


def templates() -> dict[str, str]:
    """File name under the chart's templates/ -> its text."""
    return {path.name: _template(path) for path in manifests.crd_files()}


def write(chart: Path) -> list[Path]:
    folder = chart / "templates"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in templates().items():
        (folder / name).write_text(text)
        written.append(folder / name)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1] if len(sys.argv) > 1 else "charts/weft-crds")):
        print(path)
