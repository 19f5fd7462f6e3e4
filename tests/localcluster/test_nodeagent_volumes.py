"""Pod volumes as files, paths rewritten into them, and how each container is launched."""

from __future__ import annotations

import base64
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from weft_localcluster.nodeagent.downward import PodFields
from weft_localcluster.nodeagent.env import ConfigError
from weft_localcluster.nodeagent.images import Image
from weft_localcluster.nodeagent.launch import launch_plan
from weft_localcluster.nodeagent.mounts import Mount, container_mounts, rewrite, rewrite_arg
from weft_localcluster.nodeagent.pod_files import token_due, write_volume
from weft_localcluster.nodeagent.references import referenced_objects
from weft_localcluster.nodeagent.volumes import File, TokenSpec, token_specs, volume_contents

POD: dict[str, Any] = {
    "metadata": {"name": "web-1", "namespace": "shop", "uid": "1234", "labels": {"app": "web"}},
    "spec": {"containers": [{"name": "app"}]},
}
FIELDS = PodFields(POD, "10.244.0.7", "10.244.0.1")
OBJECTS: dict[tuple[str, str], Mapping[str, Any]] = {
    ("ConfigMap", "settings"): {
        "data": {"app.conf": "debug=true\n"},
        "binaryData": {"logo": base64.b64encode(b"\x89PNG").decode()},
    },
    ("Secret", "creds"): {"data": {"password": base64.b64encode(b"s3cret").decode()}},
    ("ConfigMap", "kube-root-ca.crt"): {"data": {"ca.crt": "PEM"}},
}
IDENTITY_TOKEN = TokenSpec("identity.weft.dev", 86400)
API_TOKEN = TokenSpec(None, 3607)
TOKENS = {IDENTITY_TOKEN: "identity-jwt", API_TOKEN: "api-jwt"}


def lookup(kind: str, name: str) -> Mapping[str, Any] | None:
    return OBJECTS.get((kind, name))


def contents(volume: dict[str, Any]) -> dict[str, File] | None:
    return volume_contents(volume, FIELDS, lookup, TOKENS, {})


def test_config_maps_and_secrets_with_items_and_modes() -> None:
    assert contents({"name": "c", "configMap": {"name": "settings"}}) == {
        "app.conf": File(b"debug=true\n", 0o644),
        "logo": File(b"\x89PNG", 0o644),
    }
    items = {
        "name": "settings",
        "items": [{"key": "app.conf", "path": "conf/app.conf", "mode": 0o600}],
    }
    assert contents({"name": "c", "configMap": items}) == {
        "conf/app.conf": File(b"debug=true\n", 0o600)
    }
    secret = {"secretName": "creds", "defaultMode": 0o400}
    assert contents({"name": "s", "secret": secret}) == {"password": File(b"s3cret", 0o400)}
    assert contents({"name": "e", "emptyDir": {}}) is None
    assert contents({"name": "o", "secret": {"secretName": "nope", "optional": True}}) == {}
    with pytest.raises(ConfigError, match='secret "nope" not found'):
        contents({"name": "o", "secret": {"secretName": "nope"}})


def test_the_api_access_volume_every_pod_gets_and_the_proxys_token() -> None:
    api_access = {
        "name": "kube-api-access-x",
        "projected": {
            "defaultMode": 0o644,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {
                    "configMap": {
                        "name": "kube-root-ca.crt",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}
                        ]
                    }
                },
            ],
        },
    }
    identity = {
        "name": "weft-identity-token",
        "projected": {
            "sources": [
                {
                    "serviceAccountToken": {
                        "audience": "identity.weft.dev",
                        "expirationSeconds": 86400,
                        "path": "token",
                    }
                }
            ]
        },
    }
    assert contents(api_access) == {
        "token": File(b"api-jwt", 0o644),
        "ca.crt": File(b"PEM", 0o644),
        "namespace": File(b"shop", 0o644),
    }
    assert contents(identity) == {"token": File(b"identity-jwt", 0o644)}
    pod = {**POD, "spec": {**POD["spec"], "volumes": [api_access, identity]}}
    assert token_specs(pod) == {API_TOKEN, IDENTITY_TOKEN}
    assert referenced_objects(pod) == {("ConfigMap", "kube-root-ca.crt")}


def test_unsupported_volumes_are_named() -> None:
    with pytest.raises(ConfigError, match="'data': hostPath volumes are not supported"):
        contents({"name": "data", "hostPath": {"path": "/var/data"}})


def test_volumes_on_disk_follow_their_contents(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    write_volume(folder, {"a": File(b"1", 0o600), "sub/b": File(b"2", 0o644)})
    assert (folder / "a").read_bytes() == b"1"
    assert stat.S_IMODE((folder / "a").stat().st_mode) == 0o600
    write_volume(folder, {"a": File(b"one", 0o644)})  # a key removed since
    assert sorted(p.name for p in folder.rglob("*")) == ["a"]
    assert (folder / "a").read_bytes() == b"one"
    write_volume(tmp_path / "scratch", None)
    assert stat.S_IMODE((tmp_path / "scratch").stat().st_mode) == 0o777


def test_tokens_are_renewed_at_80_percent_of_their_life_or_after_a_day() -> None:
    assert not token_due(issued=0, expiry=3600, now=2879)
    assert token_due(issued=0, expiry=3600, now=2880)
    assert token_due(issued=0, expiry=10 * 86400, now=86400)


MOUNTS = [
    Mount("/var/run/secrets/weft.dev/identity", Path("/pods/p/volumes/token")),
    Mount("/etc/app", Path("/pods/p/volumes/config")),
]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/var/run/secrets/weft.dev/identity/token", "/pods/p/volumes/token/token"),
        ("/etc/app", "/pods/p/volumes/config"),
        ("/etc/application.conf", "/etc/application.conf"),
        ("relative/etc/app", "relative/etc/app"),
    ],
)
def test_paths_inside_mounts_are_rewritten(value: str, expected: str) -> None:
    assert rewrite(value, MOUNTS) == expected


def test_flag_values_are_rewritten_too() -> None:
    assert (
        rewrite_arg("--config=/etc/app/c.yaml", MOUNTS) == "--config=/pods/p/volumes/config/c.yaml"
    )
    assert rewrite_arg("--name=web", MOUNTS) == "--name=web"


def test_mounts_deepest_first_with_sub_paths() -> None:
    container = {
        "volumeMounts": [
            {"name": "data", "mountPath": "/data"},
            {"name": "data", "mountPath": "/data/cache/", "subPathExpr": "$(POD)"},
        ]
    }
    mounts = container_mounts(container, lambda name: Path("/v") / name, {"POD": "web-1"})
    assert mounts == [Mount("/data/cache", Path("/v/data/web-1")), Mount("/data", Path("/v/data"))]


def test_a_launch_plan_combines_image_spec_env_mounts_and_user() -> None:
    image = Image(entrypoint=("python", "-m", "app"), env={"PATH": "/venv/bin", "MODE": "image"})
    container = {
        "name": "app",
        "args": ["--token=/var/run/secrets/weft.dev/identity/token", "--who=$(WHO)"],
        "securityContext": {"runAsUser": 2102, "allowPrivilegeEscalation": False},
    }
    pod = {**POD, "spec": {**POD["spec"], "securityContext": {"fsGroup": 3000}}}
    spec_env = {"WHO": "me", "MODE": "spec", "TOKEN": "/var/run/secrets/weft.dev/identity/token"}
    plan = launch_plan(pod, container, image, spec_env, MOUNTS, Path("/pods/p/containers/app"))
    assert plan.argv == ["python", "-m", "app", "--token=/pods/p/volumes/token/token", "--who=me"]
    assert plan.env["MODE"] == "spec"
    assert plan.env["TOKEN"] == "/pods/p/volumes/token/token"
    assert plan.env["PATH"] == "/venv/bin"
    assert plan.env["HOSTNAME"] == "web-1"
    assert (plan.identity.uid, plan.identity.groups) == (2102, (3000,))
    assert plan.identity.no_new_privileges
    assert plan.cwd == Path("/pods/p/containers/app")


def test_run_as_non_root_needs_a_user() -> None:
    container = {"name": "app", "securityContext": {"runAsNonRoot": True}}
    with pytest.raises(ConfigError, match="runAsNonRoot"):
        launch_plan(POD, container, Image(("x",)), {}, [], Path("/c"))
    as_image_user = launch_plan(POD, container, Image(("x",), user=65532), {}, [], Path("/c"))
    assert (as_image_user.identity.uid, as_image_user.identity.gid) == (65532, 65532)


def test_a_working_dir_must_be_inside_a_volume() -> None:
    container = {"name": "app", "workingDir": "/etc/app/sub"}
    plan = launch_plan(POD, container, Image(("x",)), {}, MOUNTS, Path("/c"))
    assert plan.cwd == Path("/pods/p/volumes/config/sub")
    with pytest.raises(ConfigError, match="not inside a volume"):
        launch_plan(
            POD, {"name": "app", "workingDir": "/srv"}, Image(("x",)), {}, MOUNTS, Path("/c")
        )
