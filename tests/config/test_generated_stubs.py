"""The committed protobuf modules are exactly what `python -m weft_api.proto.generate` makes."""

from __future__ import annotations

from pathlib import Path

from weft_api.proto import generate


def test_committed_stubs_are_reproducible(tmp_path: Path) -> None:
    regenerated = generate.generate(tmp_path)
    committed = sorted(p for p in generate.PROTO_DIR.iterdir() if generate.is_generated(p))
    assert [p.name for p in regenerated] == [p.name for p in committed]
    stale = [
        p.name
        for p, q in zip(committed, regenerated, strict=True)
        if p.read_bytes() != q.read_bytes()
    ]
    assert not stale, f"stale generated modules {stale}: run `python -m weft_api.proto.generate`"
