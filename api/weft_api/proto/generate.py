"""Generate the Python modules of Weft's .proto files, next to them (committed).

    .venv/bin/python -m weft_api.proto.generate

For each `name.proto`: `name_pb2.py` (protoc), `name_pb2.pyi` (mypy-protobuf), and for
files with services `name_pb2_grpc.py` and `name_pb2_grpc.pyi` (grpcio: the operator,
the CLI) and `name_grpc.py` (grpclib: the proxy, which does not load grpcio). protoc is
the one bundled with grpcio-tools; the tools are pinned in pyproject.toml, so the output
is reproducible (tests/config/test_generated_stubs.py regenerates and compares).
"""

from __future__ import annotations

import re
import shutil
import sys
from importlib import resources
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
INCLUDE_ROOT = PROTO_DIR.parents[1]  # `api/`: protos import each other as weft_api/proto/...
PLUGINS = ("protoc-gen-mypy", "protoc-gen-mypy_grpc", "protoc-gen-grpclib_python")


class GenerationError(RuntimeError):
    pass


def proto_files() -> list[Path]:
    return sorted(PROTO_DIR.glob("*.proto"))


def generate(out_root: Path = INCLUDE_ROOT) -> list[Path]:
    """Write the modules of every .proto under `out_root/weft_api/proto/`; return them."""
    from grpc_tools import protoc  # a dev dependency: only needed to regenerate

    out = str(out_root)
    messages = ["--python_out", "--mypy_out"]
    services = ["--grpc_python_out", "--mypy_grpc_out", "--grpclib_python_out"]
    for path in proto_files():
        has_services = re.search(r"^service ", path.read_text(), re.MULTILINE) is not None
        outputs = messages + services if has_services else messages
        args = [
            "grpc_tools.protoc",
            f"-I{INCLUDE_ROOT}",
            f"-I{resources.files('grpc_tools') / '_proto'}",
            *(f"{option}={out}" for option in outputs),
            *(f"--plugin={name}={_plugin(name)}" for name in PLUGINS),
            str(path.relative_to(INCLUDE_ROOT)),
        ]
        if protoc.main(args) != 0:
            raise GenerationError(f"protoc failed: {' '.join(args)}")
    generated = out_root / PROTO_DIR.relative_to(INCLUDE_ROOT)
    return sorted(path for path in generated.iterdir() if is_generated(path))


def is_generated(path: Path) -> bool:
    return "_pb2" in path.name or path.name.endswith("_grpc.py")


def _plugin(name: str) -> str:
    """mypy-protobuf's and grpclib's plugins, installed beside this interpreter (the
    venv's bin/)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise GenerationError(f"{name} not found: install the dev extras (mypy-protobuf, grpclib)")
    return found


if __name__ == "__main__":
    for path in generate():
        print(path)
