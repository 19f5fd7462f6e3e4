"""`weft inject` and `weft uninject`: workload manifests in; the annotation, or the
webhook's pod, in every template out; and back."""

from __future__ import annotations

import copy
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from weft_api import mesh
from weft_api.mesh_ca import new_trust_anchor
from weft_cli.installed import settings_from_args
from weft_cli.main import main
from weft_webhooks.injection import InjectorSettings, Outcome, apply_patch, inject
from weft_webhooks.injection.manifests import (
    Removal,
    annotate_manifests,
    inject_manifests,
    uninject_manifests,
)

TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "app", "image": "example/web:1"}]},
}


def workload(kind: str, template: dict[str, Any] = TEMPLATE) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "web"}}
    if kind == "Pod":
        return {**body, "apiVersion": "v1", **copy.deepcopy(template)}
    if kind == "CronJob":
        spec = {"schedule": "@daily", "jobTemplate": {"spec": {"template": template}}}
        return {**body, "apiVersion": "batch/v1", "spec": spec}
    return {**body, "spec": {"template": copy.deepcopy(template)}}


def template_of(document: dict[str, Any]) -> Any:
    if document["kind"] == "Pod":
        return document
    if document["kind"] == "CronJob":
        return document["spec"]["jobTemplate"]["spec"]["template"]
    return document["spec"]["template"]


KINDS = ["Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_workload_kind_gets_what_the_webhook_would_add(kind: str) -> None:
    settings = InjectorSettings()
    (output,), (report,) = inject_manifests([workload(kind)], settings)
    assert report.outcome is Outcome.INJECTED
    by_webhook = copy.deepcopy(template_of(workload(kind)))
    enabled = {mesh.INJECT_ANNOTATION: mesh.INJECT_ENABLED}
    apply_patch(by_webhook, inject(by_webhook, enabled, settings).patch)
    assert template_of(output) == by_webhook


def test_lists_are_searched_and_other_documents_pass_unchanged() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}
    listed = {"apiVersion": "v1", "kind": "List", "items": [workload("Deployment"), service]}
    output, reports = inject_manifests([listed, service], InjectorSettings())
    assert [r.outcome for r in reports] == [Outcome.INJECTED]
    assert output[1] == service
    assert output[0]["items"][1] == service


def test_the_input_is_not_modified() -> None:
    documents = [workload("Deployment")]
    inject_manifests(documents, InjectorSettings())
    assert documents == [workload("Deployment")]


def test_a_template_can_opt_out() -> None:
    template = copy.deepcopy(TEMPLATE)
    template["metadata"]["annotations"] = {mesh.INJECT_ANNOTATION: mesh.INJECT_DISABLED}
    (output,), (report,) = inject_manifests([workload("Deployment", template)], InjectorSettings())
    assert report.outcome is Outcome.DISABLED
    assert output == workload("Deployment", template)


@pytest.fixture
def anchors_file(tmp_path: Path) -> Path:
    path = tmp_path / "ca.crt"
    path.write_bytes(new_trust_anchor("cluster.local", datetime.now(UTC)).cert_pem())
    return path


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(args)
    captured = capsys.readouterr()
    return int(exit_.value.code or 0), captured.out, captured.err


def test_the_command_annotates_templates_by_default_and_leaves_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "app.yaml"
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}
    manifest.write_text(yaml.safe_dump_all([workload("Deployment"), service]))
    code, out, err = run(["inject", str(manifest)], capsys)  # no cluster needed
    assert code == 0
    deployment, written_service = yaml.safe_load_all(out)
    template = deployment["spec"]["template"]
    assert template["metadata"]["annotations"] == {mesh.INJECT_ANNOTATION: mesh.INJECT_ENABLED}
    assert template["spec"] == TEMPLATE["spec"]  # the webhook adds the proxy
    assert written_service == service
    assert "deployment/web: injected" in err


def test_manual_injection_writes_the_proxy_with_the_given_settings(
    tmp_path: Path, anchors_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "app.yaml"
    manifest.write_text(yaml.safe_dump(workload("Deployment")))
    code, out, _ = run(
        ["inject", str(manifest), "--manual", "--ignore-cluster",
         f"--trust-anchors-file={anchors_file}", "--proxy-version=9.9.9"],
        capsys,
    )  # fmt: skip
    assert code == 0
    template = yaml.safe_load(out)["spec"]["template"]
    assert template["metadata"]["annotations"][mesh.PROXY_VERSION_ANNOTATION] == "9.9.9"
    proxy = next(c for c in template["spec"]["initContainers"] if c["name"] == "weft-proxy")
    # The proxy image `weft install` injects (the Dockerfile's `proxy` target).
    assert proxy["image"] == f"{mesh.PROXY_IMAGE}:9.9.9"
    env = {e["name"]: e.get("value") for e in proxy["env"]}
    assert env[mesh.ProxyEnv.TRUST_ANCHORS] == anchors_file.read_text()


def test_manual_injection_without_trust_anchors_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "app.yaml"
    manifest.write_text(yaml.safe_dump(workload("Deployment")))
    code, out, err = run(["inject", str(manifest), "--manual", "--ignore-cluster"], capsys)
    assert code == 1
    assert out == ""
    assert "--trust-anchors-file" in err


def test_manual_output_injects_to_itself(
    monkeypatch: pytest.MonkeyPatch, anchors_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["inject", "-", "--manual", "--ignore-cluster", f"--trust-anchors-file={anchors_file}"]
    monkeypatch.setattr("sys.stdin", io.StringIO(yaml.safe_dump(workload("Deployment"))))
    _, once, _ = run(args, capsys)
    monkeypatch.setattr("sys.stdin", io.StringIO(once))
    _, twice, err = run(args, capsys)
    assert twice == once
    assert "already injected" in err


@pytest.mark.parametrize("kind", KINDS)
def test_uninject_takes_back_either_form_of_injection(kind: str) -> None:
    settings = InjectorSettings(trust_anchors_pem="PEM")
    for injected, _ in (
        inject_manifests([workload(kind)], settings),
        annotate_manifests([workload(kind)]),
    ):
        (output,), (report,) = uninject_manifests(injected)
        assert report.outcome is Removal.UNINJECTED
        assert output == workload(kind)


def test_uninject_keeps_what_the_user_wrote() -> None:
    template = copy.deepcopy(TEMPLATE)
    template["metadata"]["annotations"] = {"team": "shop", mesh.INJECT_ANNOTATION: "disabled"}
    template["spec"]["initContainers"] = [{"name": "migrate", "image": "example/migrate:1"}]
    template["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    (injected,), _ = inject_manifests([workload("Deployment", template)], InjectorSettings())
    (output,), (report,) = uninject_manifests([injected])
    assert report.outcome is Removal.NOT_INJECTED  # it opted out: nothing was added
    assert output == workload("Deployment", template)
    del template["metadata"]["annotations"][mesh.INJECT_ANNOTATION]
    (injected,), _ = inject_manifests([workload("Deployment", template)], InjectorSettings())
    assert len(template_of(injected)["spec"]["initContainers"]) == 3
    (output,), _ = uninject_manifests([injected])
    assert output == workload("Deployment", template)


def test_the_uninject_command_writes_unmeshed_yaml(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (injected,), _ = inject_manifests([workload("Deployment")], InjectorSettings())
    monkeypatch.setattr("sys.stdin", io.StringIO(yaml.safe_dump(injected)))
    code, out, err = run(["uninject", "-"], capsys)
    assert code == 0
    assert yaml.safe_load(out) == workload("Deployment")
    assert "deployment/web: uninjected" in err


def test_the_installed_webhook_arguments_give_the_settings_install_chose(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(["install", "--weft-namespace=mesh"], capsys)
    assert code == 0
    deployment = next(
        doc for doc in yaml.safe_load_all(out)
        if doc and doc["kind"] == "Deployment" and doc["metadata"]["name"] == "weft-webhooks"
    )  # fmt: skip
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    settings = settings_from_args(container["args"], "other")
    assert settings.image == mesh.PROXY_IMAGE == InjectorSettings().image
    assert settings.control_plane_namespace == "mesh"


def test_a_namespace_annotation_applies_below_the_templates_own() -> None:
    template = copy.deepcopy(TEMPLATE)
    template["metadata"]["annotations"] = {mesh.PROXY_LOG_FORMAT_ANNOTATION: "plain"}
    by_namespace = {
        "shop": {mesh.PROXY_LOG_FORMAT_ANNOTATION: "json", mesh.OPAQUE_PORTS_ANNOTATION: "5432"}
    }
    deployment = workload("Deployment", template)
    deployment["metadata"]["namespace"] = "shop"
    (output,), _ = inject_manifests(
        [deployment], InjectorSettings(), lambda ns: by_namespace.get(ns or "", {})
    )
    proxy = template_of(output)["spec"]["initContainers"][1]
    env = {e["name"]: e.get("value") for e in proxy["env"]}
    assert env[mesh.ProxyEnv.LOG_FORMAT] == "plain"
    assert env[mesh.ProxyEnv.OPAQUE_PORTS] == "5432"


def test_an_unreadable_file_fails_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["inject", str(tmp_path / "missing.yaml")])
    assert exit_.value.code == 1
    assert "cannot read" in capsys.readouterr().err


def test_an_unknown_proxy_log_format_is_ignored_with_a_warning() -> None:
    template = copy.deepcopy(TEMPLATE)
    template["metadata"]["annotations"] = {mesh.PROXY_LOG_FORMAT_ANNOTATION: "logfmt"}
    (output,), (report,) = inject_manifests([workload("Deployment", template)], InjectorSettings())
    assert report.outcome is Outcome.INJECTED
    assert any("proxy-log-format" in warning and "logfmt" in warning for warning in report.warnings)
    proxy = template_of(output)["spec"]["initContainers"][1]
    assert mesh.ProxyEnv.LOG_FORMAT not in {e["name"] for e in proxy["env"]}
