"""`weft inject`: workload manifests in, the webhook's pod in every template out."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import pytest
import yaml

from weft_api import mesh
from weft_cli.main import main
from weft_webhooks.injection import InjectorSettings, Outcome, apply_patch, inject
from weft_webhooks.injection.manifests import inject_manifests

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


def test_the_command_reads_multi_document_yaml_and_writes_injected_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "app.yaml"
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}
    manifest.write_text(yaml.safe_dump_all([workload("Deployment"), service]))
    with pytest.raises(SystemExit) as exit_:
        main(["inject", str(manifest), "--proxy-version=9.9.9"])
    assert exit_.value.code == 0
    captured = capsys.readouterr()
    deployment, written_service = yaml.safe_load_all(captured.out)
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations[mesh.PROXY_VERSION_ANNOTATION] == "9.9.9"
    assert written_service == service
    assert "deployment/web: injected" in captured.err


def test_the_command_reads_stdin_and_its_output_injects_to_itself(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(yaml.safe_dump(workload("Deployment"))))
    with pytest.raises(SystemExit):
        main(["inject", "-"])
    once = capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO(once))
    with pytest.raises(SystemExit):
        main(["inject", "-"])
    captured = capsys.readouterr()
    assert captured.out == once
    assert "already injected" in captured.err


def test_an_unreadable_file_fails_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["inject", str(tmp_path / "missing.yaml")])
    assert exit_.value.code == 1
    assert "cannot read" in capsys.readouterr().err
