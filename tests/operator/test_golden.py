"""Golden tests of the catalog: manifests in, one proxy's configuration out.

Each folder under golden/ holds `input.yaml` (the manifests, as a user applies
them), `case.yaml` (what the case shows, and the proxy's identity) and
`expected.yaml` (`ProxyConfig.to_dict()`). WEFT_UPDATE_GOLDEN=1 rewrites the expected
files; read the diff before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from weft_api.config import ProxyIdentity
from weft_operator.catalog import build_proxy_config
from weft_operator.index import MeshIndex
from weft_resources import parse_resource

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(path for path in GOLDEN.iterdir() if path.is_dir())


def rendered_config(case: Path) -> dict[str, Any]:
    index = MeshIndex()
    for body in yaml.safe_load_all((case / "input.yaml").read_text()):
        if body:
            index.apply(parse_resource(body))
    proxy = yaml.safe_load((case / "case.yaml").read_text())["proxy"]
    identity = ProxyIdentity(
        pod=proxy["pod"], namespace=proxy["namespace"], service_account=proxy["serviceAccount"]
    )
    return build_proxy_config(index, identity).to_dict()


def expected_config(case: Path) -> Any:
    return yaml.safe_load((case / "expected.yaml").read_text())


@pytest.mark.parametrize("case", CASES, ids=lambda path: path.name)
def test_golden(case: Path) -> None:
    rendered = rendered_config(case)
    if os.environ.get("WEFT_UPDATE_GOLDEN") == "1":
        text = yaml.safe_dump(rendered, sort_keys=False, default_flow_style=False, width=100)
        (case / "expected.yaml").write_text(text)
    assert rendered == expected_config(case)


def test_v1alpha1_quantities_and_v1alpha4_integers_give_the_same_parent() -> None:
    quantities = expected_config(GOLDEN / "split-v1alpha1-quantities")["outbound"]
    integers = expected_config(GOLDEN / "split-v1alpha4-integers")["outbound"]
    assert quantities == integers
    books = next(parent for parent in integers if parent["name"] == "books")
    assert [(b["name"], b["weight"]) for b in books["backends"]] == [
        ("books-primary", 1000),
        ("books-canary", 500),
    ]
