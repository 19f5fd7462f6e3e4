"""The proxy's request path ships compiled (setup.py, dataplane/compiled.txt), and an edit
to one of its sources is what runs next, never the stale compiled copy beside it."""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from weft_proxy import compiled

REPOSITORY = Path(__file__).resolve().parents[2]
LISTED = REPOSITORY / "dataplane" / "compiled.txt"

PROBE = """
import json, sys
import weft_proxy.proxy
from weft_proxy.io import http1_server
from weft_proxy.outbound import attempts
print(json.dumps({
    "server": http1_server.__file__,
    "attempts": attempts.__file__,
    "edited": getattr(http1_server, "EDITED", False),
}))
"""


def listed_modules() -> list[str]:
    lines = [line.strip() for line in LISTED.read_text().splitlines()]
    return [line.removesuffix(".py").replace("/", ".") for line in lines if line[:1] not in "#"]


def test_every_listed_module_runs_compiled_in_this_install() -> None:
    """`make test` runs what ships: the listed modules import as extension modules."""
    assert compiled.running_compiled(), "the proxy runs its sources: `make compile`"
    for module in listed_modules():
        path = importlib.import_module(module).__file__ or ""
        assert path.endswith(".so"), f"{module} imports from {path}"
    assert set(compiled.listed(compiled.MANIFEST.read_text())) == set(listed_modules())


def copy_of_the_proxy(into: Path) -> Path:
    root = into / "dataplane"
    shutil.copytree(compiled.PACKAGE, root / "weft_proxy", symlinks=True)
    return root


def probe(root: Path) -> tuple[dict[str, object], str]:
    path = f"{root}:{REPOSITORY / 'api'}"
    run = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={"PYTHONPATH": path, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(run.stdout), run.stderr


def test_an_edited_source_runs_as_written_and_says_so(tmp_path: Path) -> None:
    root = copy_of_the_proxy(tmp_path)
    found, warned = probe(root)
    assert str(found["server"]).endswith(".so")  # the copy as built runs compiled
    assert not warned

    source = root / "weft_proxy" / "io" / "http1_server.py"
    source.write_text(source.read_text() + "\nEDITED = True\n")
    found, warned = probe(root)
    assert found["edited"] is True
    assert str(found["server"]).endswith("http1_server.py")
    # The unedited ones too: compiled code calls its group's compiled code directly.
    assert str(found["attempts"]).endswith("attempts.py")
    assert "weft_proxy.io.http1_server changed since the proxy was compiled" in warned


def test_a_manifest_lists_digests_by_module_and_changed_names_the_edited(tmp_path: Path) -> None:
    package = tmp_path / "weft_proxy"
    (package / "io").mkdir(parents=True)
    (package / "io" / "a.py").write_text("A = 1\n")
    (package / "b.py").write_text("B = 1\n")

    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    manifest = (
        f"{digest(package / 'io' / 'a.py')}  weft_proxy.io.a\n"
        f"{digest(package / 'b.py')}  weft_proxy.b\n"
    )
    modules = compiled.listed(manifest)
    assert compiled.changed(modules, package) == []
    (package / "b.py").write_text("B = 2\n")
    assert compiled.changed(modules, package) == ["weft_proxy.b"]
    (package / "io" / "a.py").unlink()  # a source gone is not the one compiled either
    assert compiled.changed(modules, package) == ["weft_proxy.io.a", "weft_proxy.b"]
