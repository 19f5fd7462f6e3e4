"""The image table: which local command stands in for each container image.

The node agent has no container engine: a container "image" is an entry of this one
table, with the parts of an image's config the kubelet would honour (entrypoint, cmd,
environment). Pod specs combine with them as with Docker images: `command` replaces
the entrypoint (and drops cmd), `args` replaces cmd.

| image (any tag unless one is given)     | runs                                    |
|-----------------------------------------|-----------------------------------------|
| `mesh.PROXY_IMAGE` (Weft's proxy)        | `python -m weft_proxy`; proxy-init runs |
|                                         | from it as `python -m weft_proxy.init`  |
|                                         | (the injected init container's command) |
| `mesh.CONTROL_PLANE_IMAGE` (Weft's one  | `python -m ARGS` as the Dockerfile:      |
| image: operator, webhooks)              | entrypoint `python -m`, cmd `weft_proxy`,|
|                                         | user 2102; the Deployments' args pick   |
|                                         | `weft_operator` or `weft_webhooks`      |
| `weft.dev/samples/web`                  | `python -m bookshop.web`                |
| `weft.dev/samples/books:v1`, `:v2`      | `python -m bookshop.books` (BOOKS_VERSION) |
| `weft.dev/samples/ratings`              | `python -m bookshop.ratings`            |
| `weft.dev/samples/traffic`              | `python -m bookshop.traffic`            |
| `python` (docker.io/library/python)     | this machine's Python (`python3`), for  |
|                                         | tests and debugging pods                |
| `prom/prometheus` (`weft viz install`)  | Prometheus built from Go modules (with  |
|                                         | Kubernetes discovery, which Debian's    |
|                                         | lacks), user nobody, as upstream's      |

`python` is the agent's own interpreter (its virtualenv first on PATH), so every
container has Weft's and the samples' dependencies. Sample entry points and users must
match their Dockerfiles under samples/ (a test checks it). Anything else fails to "pull".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from weft_api import mesh

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# samples/ of the source tree this package is installed from (editable installs).
DEFAULT_SAMPLES_DIR = Path(__file__).resolve().parents[3] / "samples"
BOOKSHOP = "01-bookshop"
# Debian's package, without Kubernetes discovery: the agent passes the one it builds.
DEBIAN_PROMETHEUS = Path("/usr/bin/prometheus")
NOBODY = 65534  # the upstream Prometheus image's USER
SAMPLES_USER = 65532  # the samples' images run as an unprivileged user ("nonroot")
CONTROL_PLANE_USER = mesh.PROXY_UID  # the Dockerfile's `USER 2102:2102` (user weft)


@dataclass(frozen=True)
class Image:
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    user: int | None = None  # the Dockerfile's USER (uid = gid); None: root


class ImagePullError(LookupError):
    """The image is not in the table; the message is the container's waiting message."""


def normalize(reference: str) -> tuple[str, str | None]:
    """`python:3.11` -> (`docker.io/library/python`, `3.11`); a digest is ignored."""
    name = reference.split("@", 1)[0]
    last_slash = name.rfind("/")
    tag: str | None = None
    if ":" in name[last_slash + 1 :]:
        name, tag = name.rsplit(":", 1)
    first, _, rest = name.partition("/")
    if not rest:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    return name, tag


@dataclass(frozen=True)
class ImageTable:
    entries: Mapping[str, Image]  # keys: normalized `repository` or `repository:tag`

    def resolve(self, reference: str) -> Image:
        repository, tag = normalize(reference)
        for key in ([f"{repository}:{tag}"] if tag else []) + [repository]:
            if key in self.entries:
                return self.entries[key]
        known = ", ".join(sorted(self.entries))
        raise ImagePullError(
            f'Failed to pull image "{reference}": the local node agent runs only the images '
            f"of its table (weft_localcluster/nodeagent/images.py): {known}"
        )


def argv(image: Image, command: list[str] | None, args: list[str] | None) -> list[str]:
    """The process's argv, as a container runtime combines a pod spec with an image."""
    if command:
        return [*command, *(args or [])]
    return [*image.entrypoint, *(args if args else image.cmd)]


def default_table(
    python_bin_dir: Path,
    samples_dir: Path = DEFAULT_SAMPLES_DIR,
    prometheus: Path = DEBIAN_PROMETHEUS,
) -> ImageTable:
    base = {"PATH": f"{python_bin_dir}:{SYSTEM_PATH}", "PYTHONUNBUFFERED": "1"}
    bookshop = {**base, "PYTHONPATH": str(samples_dir / BOOKSHOP)}

    def sample(module: str, **env: str) -> Image:
        entrypoint = ("python", "-m", f"bookshop.{module}")
        return Image(entrypoint, env={**bookshop, **env}, user=SAMPLES_USER)

    proxy_repository, _ = normalize(mesh.PROXY_IMAGE)
    control_plane_repository, _ = normalize(mesh.CONTROL_PLANE_IMAGE)
    # The Dockerfile's image: ENTRYPOINT ["python", "-m"], CMD ["weft_proxy"], USER weft.
    control_plane = Image(("python", "-m"), ("weft_proxy",), env=base, user=CONTROL_PLANE_USER)
    return ImageTable(
        {
            proxy_repository: Image(entrypoint=("python", "-m", "weft_proxy"), env=base),
            control_plane_repository: control_plane,
            "weft.dev/samples/web": sample("web"),
            "weft.dev/samples/books:v1": sample("books", BOOKS_VERSION="v1"),
            "weft.dev/samples/books:v2": sample("books", BOOKS_VERSION="v2"),
            "weft.dev/samples/ratings": sample("ratings"),
            "weft.dev/samples/traffic": sample("traffic"),
            "docker.io/library/python": Image(entrypoint=(), cmd=("python3",), env=base),
            # The upstream image's ENTRYPOINT and CMD (its paths are volumes in a pod).
            "docker.io/prom/prometheus": Image(
                (str(prometheus),),
                (
                    "--config.file=/etc/prometheus/prometheus.yml",
                    "--storage.tsdb.path=/prometheus",
                ),
                env={"PATH": SYSTEM_PATH},
                user=NOBODY,
            ),
        }
    )
