"""Golden tests of injection: a pod and its namespace's annotations in, the patch out.

Each folder under golden/injection/ holds `input.yaml` (`pod`, `namespaceAnnotations`,
optional `settings`) and `expected.yaml` (the outcome, warnings and JSON Patch the
webhook returns). WEFT_UPDATE_GOLDEN=1 rewrites the expected files; read the diff
before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from weft_webhooks.injection import InjectorSettings, inject

GOLDEN = Path(__file__).parent / "golden" / "injection"
CASES = sorted(path for path in GOLDEN.iterdir() if path.is_dir())


def injection_of(case: Path) -> dict[str, Any]:
    given = yaml.safe_load((case / "input.yaml").read_text())
    # A fixed version: releases must not rewrite every expected file.
    settings = InjectorSettings(**{"version": "0.0.0-golden", **given.get("settings", {})})
    injection = inject(given["pod"], given["namespaceAnnotations"], settings)
    return {
        "outcome": injection.outcome.value,
        "warnings": list(injection.warnings),
        "patch": list(injection.patch),
    }


@pytest.mark.parametrize("case", CASES, ids=lambda path: path.name)
def test_golden(case: Path) -> None:
    rendered = injection_of(case)
    if os.environ.get("WEFT_UPDATE_GOLDEN") == "1":
        text = yaml.safe_dump(rendered, sort_keys=False, width=100)
        (case / "expected.yaml").write_text(text)
    assert rendered == yaml.safe_load((case / "expected.yaml").read_text())
