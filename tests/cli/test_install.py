"""`weft install` and `weft uninstall` as a user runs them: the manifests pinned by
golden files (generated keys masked, CRD bodies named rather than repeated), the
generated identity checked, given identities honoured or refused, and the wheel
carrying everything `weft install` reads.

WEFT_UPDATE_GOLDEN=1 rewrites the golden files; read the diff before committing it.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from identity_files import identity_arguments, write_identity
from weft_runner import weft

from weft_api import mesh
from weft_cli import certificates, manifests
from weft_cli.errors import CliError
from weft_cli.install import render, running, values
from weft_webhooks.endpoints import CONVERTED_CRDS

GOLDEN = Path(__file__).parent / "golden"
REPOSITORY = Path(__file__).parents[2]
NOW = datetime.datetime.now(datetime.UTC)


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def by_kind(text: str, kind: str) -> list[dict[str, Any]]:
    return [doc for doc in documents(text) if doc["kind"] == kind]


def masked(text: str) -> str:
    """The output with what changes between runs or releases replaced by placeholders:
    CRD bodies (their files are pinned in crds/) by their name and conversion, the
    generated PEMs and their base64 by <generated>, and the version by <version>."""
    parts = []
    for part in text.split("\n---\n"):
        crd = (
            next((d for d in yaml.safe_load_all(part) if d), None)
            if "CustomResource" in part
            else None
        )
        if crd and crd.get("kind") == "CustomResourceDefinition":
            conversion = yaml.safe_dump(crd["spec"]["conversion"], sort_keys=True).strip()
            part = f"# CRD {crd['metadata']['name']} (crds/), conversion:\n# " + conversion.replace(
                "\n", "\n# "
            )
        parts.append(part)
    joined = "\n---\n".join(parts)
    joined = re.sub(
        r"-----BEGIN CERTIFICATE-----\n(.*\n)*?\s*-----END CERTIFICATE-----", "<generated>", joined
    )
    joined = re.sub(r"(tls\.crt|tls\.key|ca\.crt): \S+", r"\1: <generated>", joined)
    return joined.replace(mesh.PROXY_VERSION, "<version>")


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("WEFT_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text()


def test_install_output_is_pinned() -> None:
    ran = weft("install")
    assert ran.code == 0, ran.stderr
    assert "keep it secret" in ran.stderr
    check_golden("install.yaml", masked(ran.stdout))


def test_ha_spreads_three_operators_and_bounds_disruption() -> None:
    ran = weft("install", "--ha")
    assert ran.code == 0, ran.stderr
    check_golden("install-ha.yaml", masked(ran.stdout))
    operator = next(
        d for d in by_kind(ran.stdout, "Deployment") if d["metadata"]["name"] == "weft-operator"
    )
    assert operator["spec"]["replicas"] == 3
    assert "podAntiAffinity" in operator["spec"]["template"]["spec"]["affinity"]
    budgets = {d["metadata"]["name"]: d for d in by_kind(ran.stdout, "PodDisruptionBudget")}
    assert sorted(budgets) == ["weft-operator", "weft-webhooks"]
    assert budgets["weft-operator"]["spec"]["maxUnavailable"] == 1


def webhooks_of(text: str) -> dict[str, Any]:
    return next(d for d in by_kind(text, "Deployment") if d["metadata"]["name"] == "weft-webhooks")


def test_the_webhooks_run_two_replicas_one_at_a_time_disrupted() -> None:
    """Conversion is on the read path (TrafficSplits stored at v1alpha4, read at
    v1alpha1 by Flagger): two replicas, spread where possible, a budget so a drain takes
    one at a time, rollouts that start the new one first, and only Ready ones called."""
    text = weft("install").stdout
    webhooks = webhooks_of(text)
    assert webhooks["spec"]["replicas"] == 2
    assert webhooks["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    pod = webhooks["spec"]["template"]["spec"]
    (term,) = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"] == {
        "path": "/readyz",
        "port": "https",
        "scheme": "HTTPS",
    }
    assert {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in (
        container["env"]
    )
    (budget,) = by_kind(text, "PodDisruptionBudget")
    assert budget["metadata"]["name"] == "weft-webhooks"
    assert budget["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "weft-webhooks"}},
    }
    single = weft("install", "--set", "webhooks.replicas=1").stdout
    assert webhooks_of(single)["spec"]["replicas"] == 1
    assert by_kind(single, "PodDisruptionBudget") == []


def test_only_generated_keys_differ_between_runs() -> None:
    first, second = weft("install").stdout, weft("install").stdout
    assert first != second
    assert masked(first) == masked(second)


def identity_of(text: str) -> tuple[str, dict[str, bytes]]:
    (roots,) = by_kind(text, "ConfigMap")
    (issuer,) = by_kind(text, "Secret")
    return roots["data"]["ca-bundle.crt"], {
        k: base64.b64decode(v) for k, v in issuer["data"].items()
    }


def test_the_generated_anchor_signs_the_generated_issuer() -> None:
    anchors_pem, issuer = identity_of(weft("install").stdout)
    (anchor,) = certificates.load(anchors_pem)
    (issuer_cert,) = certificates.load(issuer["tls.crt"])
    assert certificates.signed_by_one_of(issuer_cert, [anchor])
    assert issuer["ca.crt"].decode() == anchors_pem
    assert certificates.time_left(anchor, NOW) > datetime.timedelta(days=3000)
    assert certificates.time_left(issuer_cert, NOW) > datetime.timedelta(days=300)
    assert b"PRIVATE KEY" in issuer["tls.key"]


def test_a_given_identity_is_installed_as_given(tmp_path: Path) -> None:
    paths = write_identity(tmp_path)
    ran = weft("install", *identity_arguments(paths))
    assert ran.code == 0, ran.stderr
    assert "generated" not in ran.stderr
    anchors_pem, issuer = identity_of(ran.stdout)
    assert anchors_pem.strip() == paths["anchors"].read_text().strip()
    assert issuer["tls.key"] == paths["key"].read_bytes()
    assert "keep it secret" not in ran.stdout  # nothing was generated


def test_an_issuer_the_anchors_did_not_sign_is_refused(tmp_path: Path) -> None:
    paths = write_identity(tmp_path, anchor_domain="elsewhere.example")
    error = weft("install", *identity_arguments(paths)).one_line_error
    assert "not signed by any of identity.trustAnchorsPEM" in error


def test_half_an_identity_is_refused(tmp_path: Path) -> None:
    paths = write_identity(tmp_path)
    error = weft("install", f"--set-file=identity.issuer.crt={paths['crt']}").one_line_error
    assert "missing identity.trustAnchorsPEM, identity.issuer.key" in error


def test_set_overrides_values_and_refuses_unknown_ones() -> None:
    ran = weft("install", "--ha", "--set", "operator.replicas=2", "--set", "image.tag=dev")
    operator = next(
        d for d in by_kind(ran.stdout, "Deployment") if d["metadata"]["name"] == "weft-operator"
    )
    assert operator["spec"]["replicas"] == 2  # --set wins over --ha
    assert (
        operator["spec"]["template"]["spec"]["containers"][0]["image"]
        == f"{mesh.CONTROL_PLANE_IMAGE}:dev"
    )
    assert "operator.memoryLimit" in weft("install", "--set", "operator.replica=2").one_line_error
    assert "whole number" in weft("install", "--set", "operator.replicas=two").one_line_error
    assert "key=value" in weft("install", "--set", "operator.replicas").one_line_error
    assert (
        "cannot read"
        in weft("install", "--set-file", "identity.issuer.crt=/nowhere").one_line_error
    )


def operator_args(text: str) -> list[str]:
    operator = next(
        d for d in by_kind(text, "Deployment") if d["metadata"]["name"] == "weft-operator"
    )
    args: list[str] = operator["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def test_the_access_model_option_reaches_the_operator_and_a_wrong_one_is_refused() -> None:
    assert "--access-model=linkerd" in operator_args(weft("install").stdout)
    assert "--access-model=smi" in operator_args(weft("install", "--access-model", "smi").stdout)
    assert "--access-model=smi" in operator_args(weft("install", "--set", "accessModel=smi").stdout)
    refused = weft("install", "--set", "accessModel=open").one_line_error
    assert "accessModel must be one of linkerd, smi, not 'open'" in refused


def test_the_control_plane_namespace_is_chosen_once() -> None:
    text = weft("install", "--weft-namespace", "mesh").stdout
    namespaced = [d for d in documents(text) if "namespace" in d["metadata"]]
    assert {d["metadata"]["namespace"] for d in namespaced} == {"mesh"}
    webhooks = next(
        d for d in by_kind(text, "Deployment") if d["metadata"]["name"] == "weft-webhooks"
    )
    assert (
        "--serving-name=weft-webhooks.mesh.svc"
        in webhooks["spec"]["template"]["spec"]["containers"][0]["args"]
    )


def test_crds_alone_are_the_shipped_files() -> None:
    ran = weft("install", "--crds")
    shipped = [doc for path in manifests.crd_files() for doc in documents(path.read_text())]
    assert documents(ran.stdout) == shipped
    assert all(crd["spec"]["conversion"] == {"strategy": "None"} for crd in shipped)


def test_the_full_install_calls_the_conversion_webhook_through_its_service() -> None:
    for crd in by_kind(weft("install").stdout, "CustomResourceDefinition"):
        conversion = crd["spec"]["conversion"]
        if crd["metadata"]["name"] not in CONVERTED_CRDS:
            assert conversion == {"strategy": "None"}
            continue
        assert conversion["strategy"] == "Webhook"
        service = conversion["webhook"]["clientConfig"]["service"]
        assert service == {
            "name": "weft-webhooks",
            "namespace": "weft",
            "port": 443,
            "path": "/convert",
        }
        assert "caBundle" not in conversion["webhook"]["clientConfig"]  # the webhooks publish it


def test_webhook_configurations_call_the_service_and_leave_the_bundle_to_the_webhooks() -> None:
    text = weft("install").stdout
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        (configuration,) = by_kind(text, kind)
        client = configuration["webhooks"][0]["clientConfig"]
        assert set(client) == {"service"}
        assert client["service"]["name"] == "weft-webhooks"


def test_json_output_is_one_list_of_the_same_objects() -> None:
    listed = json.loads(weft("install", "--crds", "-o", "json").stdout)
    assert listed["kind"] == "List"
    assert listed["items"] == documents(weft("install", "--crds").stdout)


def test_uninstall_keeps_the_crds_unless_asked() -> None:
    ran = weft("uninstall")
    assert ran.code == 0
    check_golden("uninstall.yaml", ran.stdout)
    kinds = [doc["kind"] for doc in documents(ran.stdout)]
    assert "CustomResourceDefinition" not in kinds
    assert kinds[:2] == ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"]
    assert "weft install --crds" in ran.stderr  # how to undo the conversion switch
    everything = [doc["kind"] for doc in documents(weft("uninstall", "--all").stdout)]
    assert everything.count("CustomResourceDefinition") == len(manifests.crd_files())
    assert everything[-1] == "CustomResourceDefinition"  # after what uses them


# What the wheel is built from (pyproject.toml's packages and package data).
SOURCES = (
    "pyproject.toml",
    "setup.py",
    "README.md",
    "api",
    "operator",
    "dataplane",
    "webhooks",
    "cli",
    "localcluster",
    "viz",
    "crds",
)
# What a clean checkout has not: the in-place build's output is the wheel's to make.
LITTER = shutil.ignore_patterns(
    "__pycache__", ".mypy_cache", "*.egg-info", "*.so", "compiled.sha256", "build"
)


def test_the_wheel_carries_the_templates_the_crds_and_the_compiled_proxy(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy: setuptools builds in place, leaving build/
    for name in SOURCES:
        origin, copy = REPOSITORY / name, source / name
        if origin.is_dir():
            shutil.copytree(origin, copy, symlinks=True, ignore=LITTER)
        else:
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(origin, copy)
    command = [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*command, "-w", str(tmp_path)], cwd=source, check=True, capture_output=True)
    (wheel,) = tmp_path.glob("weft-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {
        f"weft_cli/templates/{p.name}" for p in (REPOSITORY / "cli/weft_cli/templates").iterdir()
    }
    crds = {f"weft_cli/crds/{p.name}" for p in (REPOSITORY / "crds").glob("*.yaml")}
    assert templates <= names
    assert crds <= names
    assert "weft_webhooks/injection/templates/proxy.yaml.j2" in names
    viz = REPOSITORY / "viz/weft_viz"
    shipped = {"scrape/prometheus.yml", "scrape/podmonitor.yaml", "static/app.js"}
    shipped |= {f"grafana/{p.name}" for p in (viz / "grafana").glob("*.json")}
    assert {f"weft_viz/{name}" for name in shipped} <= names
    # The proxy's request path, compiled, with the digests of the sources it came from.
    assert "weft_proxy/compiled.sha256" in names
    assert any(n.startswith("weft_proxy/native__mypyc.") and n.endswith(".so") for n in names)
    assert any(n.startswith("weft_proxy/io/http1_server.") and n.endswith(".so") for n in names)


def issuer_secret(
    paths: dict[str, Path], annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    files = {"tls.crt": paths["crt"], "tls.key": paths["key"], "ca.crt": paths["anchors"]}
    return {
        "metadata": {"name": "weft-identity-issuer", "namespace": "weft",
                     "annotations": annotations or {}},
        "data": {key: base64.b64encode(path.read_bytes()).decode() for key, path in files.items()},
    }  # fmt: skip


def test_upgrade_keeps_the_running_issuer_and_the_bundle_of_roots(tmp_path: Path) -> None:
    paths = write_identity(tmp_path)
    (tmp_path / "other").mkdir()
    other = write_identity(tmp_path / "other")
    bundle = paths["anchors"].read_text() + other["anchors"].read_text()  # mid-rotation
    roots = {"data": {"ca-bundle.crt": bundle}}
    kept = running.identity_of(issuer_secret(paths), roots, NOW)
    assert (kept.trust_anchors_pem, kept.issuer_key_pem) == (bundle, paths["key"].read_text())
    assert not kept.generated
    assert not kept.external
    alone = running.identity_of(issuer_secret(paths), None, NOW)  # no ConfigMap: ca.crt
    assert alone.trust_anchors_pem == paths["anchors"].read_text()
    rendered = render.install("weft", values.defaults(), kept)
    assert identity_of(rendered)[0] == bundle


def test_upgrade_leaves_a_cert_manager_issuer_to_cert_manager(tmp_path: Path) -> None:
    paths = write_identity(tmp_path)
    secret = issuer_secret(paths, {running.CERT_MANAGER_ANNOTATION: "weft-issuer"})
    kept = running.identity_of(secret, None, NOW)
    assert kept.external
    rendered = render.install("weft", values.defaults(), kept)
    assert by_kind(rendered, "Secret") == []
    assert (
        by_kind(rendered, "ConfigMap")[0]["data"]["ca-bundle.crt"] == paths["anchors"].read_text()
    )


def test_upgrade_refuses_a_secret_it_cannot_keep(tmp_path: Path) -> None:
    paths = write_identity(tmp_path)
    secret = issuer_secret(paths)
    del secret["data"]["tls.key"]
    with pytest.raises(CliError, match=r"Secret weft/weft-identity-issuer has no tls\.key"):
        running.identity_of(secret, None, NOW)
    secret["data"]["tls.key"] = "not base64!"
    with pytest.raises(CliError, match=r"tls\.key is not base64-encoded PEM"):
        running.identity_of(secret, None, NOW)
    (tmp_path / "foreign").mkdir()
    foreign = write_identity(tmp_path / "foreign")
    mixed = issuer_secret(paths)
    mixed["data"]["ca.crt"] = base64.b64encode(foreign["anchors"].read_bytes()).decode()
    with pytest.raises(CliError, match="not signed by any of"):
        running.identity_of(mixed, None, NOW)


def test_upgrade_on_a_cluster_without_weft_says_what_to_run(
    kubeconfig: Path, namespace: str
) -> None:
    ran = weft("upgrade", "--weft-namespace", namespace, kubeconfig=str(kubeconfig))
    error = ran.one_line_error
    assert f"no Weft identity to keep: the Secret {namespace}/weft-identity-issuer" in error
    assert "weft install | kubectl apply -f -" in error
