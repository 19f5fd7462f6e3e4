"""Install manifests, rendered from jinja2 templates shipped in this package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

DEFAULT_NAMESPACE = "weft"

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("weft_cli", "templates"),
    undefined=jinja2.StrictUndefined,  # a missing value is an error, not an empty string
    keep_trailing_newline=True,
)


def render(template: str, **values: Any) -> str:
    return _env.get_template(f"{template}.yaml.j2").render(**values)


def operator_rbac(namespace: str = DEFAULT_NAMESPACE) -> str:
    return render("operator-rbac", namespace=namespace)


def crd_dir() -> Path:
    """crds/ of the checkout (an installed wheel carries them as package data later)."""
    here = Path(str(resources.files("weft_cli")))
    return here.parent.parent / "crds"
