"""Which of the proxy's modules run compiled, and keeping a compiled copy from running in
place of a source edited since (docs/architecture.md, "Compiled modules").

The build (setup.py) compiles the request path with mypyc into extension modules beside
their sources, and writes `compiled.sha256`: the digest of each source it compiled.
Python imports an extension module before a source of the same name, so after an edit
the old compiled copy would run. `keep_sources_true`, run when the package is imported,
compares the digests; if any source changed, every compiled module is loaded from its
source instead (they call one another natively: a stale one among fresh ones is not
safe either), and a warning says how to build them again.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

PACKAGE = Path(__file__).resolve().parent
MANIFEST = PACKAGE / "compiled.sha256"

log = logging.getLogger(__name__)


def listed(manifest: str) -> dict[str, str]:
    """The manifest's `<sha256>  <module>` lines, as {module: digest}."""
    modules = {}
    for line in manifest.splitlines():
        digest, _, module = line.partition("  ")
        if module:
            modules[module] = digest
    return modules


def source_of(module: str, package: Path = PACKAGE) -> Path:
    """weft_proxy.io.http1_server -> <package>/io/http1_server.py"""
    _, *parts = module.split(".")
    return package.joinpath(*parts).with_suffix(".py")


def changed(modules: dict[str, str], package: Path = PACKAGE) -> list[str]:
    """The modules whose source is not the one they were compiled from."""
    edited = []
    for module, digest in modules.items():
        source = source_of(module, package)
        if not source.exists() or hashlib.sha256(source.read_bytes()).hexdigest() != digest:
            edited.append(module)
    return edited


class FromSource(importlib.abc.MetaPathFinder):
    """Finds these modules' sources ahead of their compiled copies."""

    def __init__(self, modules: dict[str, Path]) -> None:
        self.modules = modules

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        source = self.modules.get(fullname)
        return None if source is None else importlib.util.spec_from_file_location(fullname, source)


def keep_sources_true() -> None:
    """Run the sources instead of their compiled copies if any source changed."""
    if not MANIFEST.exists():  # not compiled: the sources run anyway
        return
    modules = listed(MANIFEST.read_text())
    edited = changed(modules)
    if edited:
        sys.meta_path.insert(0, FromSource({module: source_of(module) for module in modules}))
        log.warning(
            "%s changed since the proxy was compiled: running its sources, slower, until "
            "they are compiled again (make compile)",
            ", ".join(edited),
        )


def running_compiled() -> bool:
    """Whether the request path runs compiled (the proxy logs it at start)."""
    from weft_proxy.io import http1_server

    return not (http1_server.__file__ or "").endswith(".py")
