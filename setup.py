"""Compiles the proxy's request path with mypyc; pyproject.toml holds everything else.

The modules listed in dataplane/compiled.txt are compiled to C from their own sources, as
they are (they are mypy-strict already), into one extension library beside them; the
sources stay and remain the truth. The build writes `weft_proxy/compiled.sha256`, the
digest of each source it compiled, so that a source edited later is run as written
rather than its stale compiled copy (weft_proxy/compiled.py). Where no C compiler or no
mypyc is at hand the build goes on without them: the proxy then runs its sources, slower
(docs/architecture.md, "Compiled modules"; docs/benchmarks.md, "Fifth pass").
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
DATAPLANE = HERE / "dataplane"
GROUP = "weft_proxy.native"  # the library: weft_proxy/native__mypyc.*.so
MANIFEST = "compiled.sha256"


def compiled_sources() -> list[str]:
    lines = (DATAPLANE / "compiled.txt").read_text().splitlines()
    return [line for line in (line.strip() for line in lines) if line and line[0] != "#"]


def manifest(sources: list[str]) -> str:
    """`<sha256>  <module>` per compiled source, as weft_proxy/compiled.py reads it."""
    lines = []
    for source in sources:
        digest = hashlib.sha256((DATAPLANE / source).read_bytes()).hexdigest()
        module = source.removesuffix(".py").replace("/", ".")
        lines.append(f"{digest}  {module}\n")
    return "".join(lines)


class BuildCompiled(build_ext):
    """build_ext that writes the manifest beside what it built, and that leaves the
    proxy interpreted, with a warning, when the C compiler fails."""

    def run(self) -> None:
        if not self.extensions:
            return super().run()
        written = Path(self.get_ext_fullpath(GROUP + "__mypyc")).with_name(MANIFEST)
        written.unlink(missing_ok=True)  # an earlier build's: it would vouch for this one
        try:
            super().run()
        except Exception as error:  # no compiler, no headers: the sources still run
            self.warn(f"the proxy's request path is not compiled ({error}); it runs slower")
            return
        written.write_text(manifest(compiled_sources()))


def extensions() -> list[object]:
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("mypyc is not installed: the proxy's request path is not compiled", file=sys.stderr)
        return []
    sources = [f"dataplane/{source}" for source in compiled_sources()]
    options = ["--config-file", "dataplane/mypyc.ini"]
    return list(mypycify([*options, *sources], group_name=GROUP, opt_level="3"))


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildCompiled})
