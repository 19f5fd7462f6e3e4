"""The `weft` command's entry point: a clear error when the CLI's dependencies are absent.

The base install is the proxy's and no more (pyproject.toml); the CLI needs the
`control-plane` extra. Without it, `weft` would end in a bare ModuleNotFoundError."""

from __future__ import annotations

import sys

EXTRA_HINT = "pip install 'weft[control-plane]'"


def main() -> None:
    try:
        from weft_cli.main import main as run
    except ModuleNotFoundError as error:
        sys.stderr.write(
            f"weft: the CLI needs the control-plane extra ({error.name} is not installed): "
            f"{EXTRA_HINT}\n"
        )
        raise SystemExit(1) from None
    run()
