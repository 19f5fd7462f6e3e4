"""The Helm charts render what `weft install` renders: `helm template` of weft-crds and
weft-control-plane against `weft install`, object by object, for the same values, so
the charts and the jinja2 templates cannot drift apart. Also: the charts' values are
`weft install`'s, the CRD chart is generated from crds/, and bad values fail with a
message, as `weft install` refuses them.

Normalised: Helm's `helm.sh/resource-policy: keep` on the identity objects (an
instruction to Helm, not an object field), and the Namespace, which `weft install`
renders and the chart leaves to `helm install --create-namespace` (Helm stores the
release in it before it creates anything).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import pytest
import yaml
from helm_runner import CONTROL_PLANE_CHART, CRDS_CHART, Helm
from identity_files import identity_arguments, write_identity
from weft_runner import weft

from weft_cli.install import chart_crds, values

Key = tuple[str, str, str]


@pytest.fixture(scope="module")
def helm(helm_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(helm_binary, tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_identity(tmp_path_factory.mktemp("identity"))


def objects(text: str) -> dict[Key, dict[str, Any]]:
    found: dict[Key, dict[str, Any]] = {}
    for document in yaml.safe_load_all(text):
        if not document:
            continue
        metadata = document["metadata"]
        annotations = metadata.get("annotations", {})
        annotations.pop("helm.sh/resource-policy", None)
        if not annotations:
            metadata.pop("annotations", None)
        key = (document["kind"], metadata.get("namespace", ""), metadata["name"])
        assert key not in found, f"rendered twice: {key}"
        found[key] = document
    return found


def assert_same(charts: dict[Key, dict[str, Any]], weft_install: dict[Key, dict[str, Any]]) -> None:
    assert sorted(charts) == sorted(weft_install)
    for key, rendered in weft_install.items():
        if charts[key] != rendered:
            diff = difflib.unified_diff(
                yaml.safe_dump(rendered).splitlines(),
                yaml.safe_dump(charts[key]).splitlines(),
                "weft install",
                "helm template",
                lineterm="",
            )
            raise AssertionError(f"{key} differs:\n" + "\n".join(diff))


def helm_template(helm: Helm, namespace: str, *settings: str) -> dict[Key, dict[str, Any]]:
    crds = helm.ok("template", "weft-crds", str(CRDS_CHART), "--namespace", namespace,
                   "--set", f"controlPlaneNamespace={namespace}")  # fmt: skip
    control_plane = helm.ok(
        "template", "weft-control-plane", str(CONTROL_PLANE_CHART), "--namespace", namespace,
        *settings,
    )  # fmt: skip
    return {**objects(crds), **objects(control_plane)}


def weft_install(namespace: str, *settings: str) -> dict[Key, dict[str, Any]]:
    ran = weft("install", "--weft-namespace", namespace, *settings)
    assert ran.code == 0, ran.stderr
    rendered = objects(ran.stdout)
    assert rendered.pop(("Namespace", "", namespace))["metadata"]["name"] == namespace
    return rendered


@pytest.mark.parametrize(
    ("namespace", "settings"),
    [
        ("weft", []),
        ("mesh-system", ["--set=ha=true", "--set=operator.replicas=3"]),
        (
            "weft",
            [
                "--set=image.repository=registry.example/weft", "--set=image.tag=dev",
                "--set=image.pullPolicy=Always", "--set=proxy.version=dev",
                "--set=identity.trustDomain=corp.example", "--set=clusterDomain=corp.local",
                "--set=operator.memoryLimit=1Gi", "--set=webhooks.cpuRequest=10m",
                "--set=webhooks.replicas=1",
            ],
        ),
    ],
    ids=["defaults", "ha-elsewhere", "every-value"],
)  # fmt: skip
def test_the_charts_render_what_weft_install_renders(
    helm: Helm, identity: dict[str, Path], namespace: str, settings: list[str]
) -> None:
    given = [*identity_arguments(identity), *settings]
    assert_same(helm_template(helm, namespace, *given), weft_install(namespace, *given))


def test_with_an_external_issuer_both_leave_its_secret_alone(
    helm: Helm, identity: dict[str, Path]
) -> None:
    external = [
        f"--set-file=identity.trustAnchorsPEM={identity['anchors']}",
        "--set=identity.issuer.external=true",
    ]
    charts, installed = helm_template(helm, "weft", *external), weft_install("weft", *external)
    assert_same(charts, installed)
    assert ("Secret", "weft", "weft-identity-issuer") not in installed
    roots = installed[("ConfigMap", "weft", "weft-identity-trust-roots")]
    assert roots["data"]["ca-bundle.crt"] == identity["anchors"].read_text()


def operator_args(rendered: dict[Key, dict[str, Any]], namespace: str = "weft") -> list[str]:
    deployment = rendered[("Deployment", namespace, "weft-operator")]
    args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def test_without_an_identity_the_chart_lets_the_operator_make_and_keep_one(helm: Helm) -> None:
    """Nothing secret in the chart's values, so a GitOps repository holds no key: the
    operator generates the identity at its first start, into objects Helm never owns,
    so no upgrade or uninstall replaces them."""
    charts = helm_template(helm, "weft")
    assert ("Secret", "weft", "weft-identity-issuer") not in charts
    assert ("ConfigMap", "weft", "weft-identity-trust-roots") not in charts
    assert "--generate-identity" in operator_args(charts)
    installed = weft_install("weft")  # generated by `weft install` itself instead
    assert "--generate-identity" not in operator_args(installed)
    assert sorted(charts) == sorted(
        key for key in installed if key[0] not in ("Secret", "ConfigMap")
    )


def test_the_chart_values_are_weft_installs_values() -> None:
    chart_values = yaml.safe_load((CONTROL_PLANE_CHART / "values.yaml").read_text())
    assert chart_values == values.defaults()


def test_the_crd_chart_is_generated_from_the_crd_files() -> None:
    templates = CRDS_CHART / "templates"
    generated = chart_crds.templates()
    on_disk = {p.name: p.read_text() for p in templates.glob("*.yaml")}
    stale = sorted(name for name in generated.keys() | on_disk.keys()
                   if generated.get(name) != on_disk.get(name))  # fmt: skip
    assert stale == [], "run: python -m weft_cli.install.chart_crds charts/weft-crds"


def test_the_crd_chart_without_the_webhook_is_weft_install_crds(helm: Helm) -> None:
    charts = objects(
        helm.ok(
            "template", "weft-crds", str(CRDS_CHART), "--set", "conversionWebhook.enabled=false"
        )
    )
    assert charts == objects(weft("install", "--crds").stdout)


def test_bad_values_fail_as_weft_install_fails(helm: Helm, identity: dict[str, Path]) -> None:
    half = f"--set-file=identity.issuer.crt={identity['crt']}"
    ran = helm.run("template", "w", str(CONTROL_PLANE_CHART), "-n", "weft", half)
    assert ran.returncode != 0
    assert "give all of identity.trustAnchorsPEM, identity.issuer.crt, identity.issuer.key" in (
        ran.stderr
    )
    assert "missing identity.trustAnchorsPEM" in weft("install", half).one_line_error
    external = "--set=identity.issuer.external=true"
    ran = helm.run("template", "w", str(CONTROL_PLANE_CHART), "-n", "weft", external)
    assert "identity.issuer.external=true needs identity.trustAnchorsPEM" in ran.stderr
    assert (
        "external=true needs identity.trustAnchorsPEM" in weft("install", external).one_line_error
    )
    ran = helm.run("template", "w", str(CONTROL_PLANE_CHART), "-n", "default")
    assert ran.returncode != 0
    assert "install Weft in a namespace of its own" in ran.stderr


def test_both_charts_pass_helm_lint(helm: Helm, identity: dict[str, Path]) -> None:
    assert "0 chart(s) failed" in helm.ok("lint", str(CRDS_CHART))
    ran = helm.ok("lint", str(CONTROL_PLANE_CHART), "--namespace", "weft",
                  *identity_arguments(identity))  # fmt: skip
    assert "0 chart(s) failed" in ran
