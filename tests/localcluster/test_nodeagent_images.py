"""The image table: references resolve as registries name them; unknown ones fail clearly;
pod specs combine with images as container runtimes do; samples match their Dockerfiles."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from weft_api import mesh
from weft_localcluster.nodeagent.images import (
    DEFAULT_SAMPLES_DIR,
    SAMPLES_USER,
    Image,
    ImagePullError,
    argv,
    default_table,
    normalize,
)

TABLE = default_table(Path("/venv/bin"))


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("python", ("docker.io/library/python", None)),
        ("python:3.11-slim", ("docker.io/library/python", "3.11-slim")),
        ("library/python:3", ("docker.io/library/python", "3")),
        ("weft.dev/samples/books:v2", ("weft.dev/samples/books", "v2")),
        ("localhost:5000/app:1", ("localhost:5000/app", "1")),
        ("ghcr.io/weft-dev/weft-proxy@sha256:abc", ("ghcr.io/weft-dev/weft-proxy", None)),
    ],
)
def test_references_are_normalized_as_registries_name_them(
    reference: str, expected: tuple[str, str | None]
) -> None:
    assert normalize(reference) == expected


def test_the_proxy_image_of_any_version_runs_the_proxy_module() -> None:
    image = TABLE.resolve(f"{mesh.PROXY_IMAGE}:{mesh.PROXY_VERSION}")
    assert image.entrypoint == ("python", "-m", "weft_proxy")
    assert image.env["PATH"].startswith("/venv/bin:")
    # proxy-init comes from the same image, with the command injection gives it.
    init = ["python", "-m", "weft_proxy.init"]
    assert argv(image, init, ["apply"]) == [*init, "apply"]


def test_books_versions_differ_by_tag() -> None:
    assert TABLE.resolve("weft.dev/samples/books:v1").env["BOOKS_VERSION"] == "v1"
    assert TABLE.resolve("weft.dev/samples/books:v2").env["BOOKS_VERSION"] == "v2"


def test_an_unknown_image_fails_to_pull_naming_the_table() -> None:
    with pytest.raises(ImagePullError) as failure:
        TABLE.resolve("nginx:1.27")
    assert 'Failed to pull image "nginx:1.27"' in str(failure.value)
    assert "nodeagent/images.py" in str(failure.value)


def test_command_replaces_the_entrypoint_and_args_replace_cmd() -> None:
    image = Image(entrypoint=("server",), cmd=("--default",))
    assert argv(image, None, None) == ["server", "--default"]
    assert argv(image, None, ["--port=1"]) == ["server", "--port=1"]
    assert argv(image, ["other"], None) == ["other"]
    assert argv(image, ["other"], ["-v"]) == ["other", "-v"]


@pytest.mark.parametrize("service", ["web", "books", "ratings", "traffic"])
def test_each_sample_image_runs_what_its_dockerfile_runs(service: str) -> None:
    dockerfile = (
        DEFAULT_SAMPLES_DIR / "01-bookshop" / "images" / service / "Dockerfile"
    ).read_text()
    entrypoint = re.search(r"^ENTRYPOINT (.+)$", dockerfile, re.MULTILINE)
    user = re.search(r"^USER (\d+)", dockerfile, re.MULTILINE)
    assert entrypoint is not None
    assert user is not None
    image = TABLE.resolve(f"weft.dev/samples/{service}:v1")
    assert tuple(json.loads(entrypoint.group(1))) == image.entrypoint
    assert int(user.group(1)) == image.user == SAMPLES_USER


def test_the_control_plane_image_runs_python_m_its_args_as_the_dockerfile_user() -> None:
    image = TABLE.resolve(f"{mesh.CONTROL_PLANE_IMAGE}:dev")
    assert argv(image, None, ["weft_operator", "--namespace=weft"]) == [
        "python",
        "-m",
        "weft_operator",
        "--namespace=weft",
    ]
    assert argv(image, None, None) == ["python", "-m", "weft_proxy"]  # the Dockerfile's CMD
    assert image.user == 2102  # `USER 2102:2102`
    dockerfile = (DEFAULT_SAMPLES_DIR.parent / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["python", "-m"]' in dockerfile
    assert "USER 2102:2102" in dockerfile
