"""`weft viz install`: Prometheus with the shipped scrape config, the dashboard reading
with read-only RBAC, and tap only when the install says so."""

from __future__ import annotations

import pytest
import yaml

from weft_cli.main import build_parser, main
from weft_cli.viz_cmd import port_forward_command
from weft_viz import install
from weft_viz.scrape import scrape_config


def by_kind(options: install.VizOptions) -> dict[tuple[str, str], dict]:  # type: ignore[type-arg]
    return {(o["kind"], o["metadata"]["name"]): o for o in install.manifests(options)}


def test_prometheus_runs_the_shipped_scrape_config() -> None:
    objects = by_kind(install.VizOptions())
    config = yaml.safe_load(objects[("ConfigMap", "prometheus-config")]["data"]["prometheus.yml"])
    assert config["scrape_configs"] == [scrape_config()]
    deployment = objects[("Deployment", "prometheus")]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("prom/prometheus:")
    assert "--config.file=/etc/prometheus/prometheus.yml" in container["args"]


def test_every_rule_reads_only() -> None:
    for obj in install.manifests(install.VizOptions()):
        if obj["kind"] == "ClusterRole":
            for rule in obj["rules"]:
                assert set(rule["verbs"]) <= {"get", "list", "watch"}, obj
                assert "secrets" not in rule["resources"]


def test_tap_is_off_unless_asked_for() -> None:
    def args(options: install.VizOptions) -> list[str]:
        deployment = by_kind(options)[("Deployment", install.DASHBOARD)]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        return list(container["args"])

    assert not any(arg.startswith("--tap") for arg in args(install.VizOptions()))
    assert "--tap=weft" in args(install.VizOptions(tap=True))
    # Injected proxies admit only weft-cli's identity: the dashboard may get its
    # certificate through the install's Role weft-tap, bound only when tap is on.
    assert ("RoleBinding", f"{install.NAMESPACE}-{install.DASHBOARD}-tap") not in by_kind(
        install.VizOptions()
    )
    tap_on = by_kind(install.VizOptions(tap=True))
    binding = tap_on[("RoleBinding", f"{install.NAMESPACE}-{install.DASHBOARD}-tap")]
    assert binding["metadata"]["namespace"] == "weft"
    assert binding["roleRef"]["name"] == "weft-tap"
    parsed = build_parser().parse_args(["viz", "install"])
    assert parsed.tap is False


def test_a_prometheus_of_your_own_replaces_the_installed_one() -> None:
    objects = by_kind(install.VizOptions(prometheus_url="http://prom.monitoring:9090"))
    assert ("Deployment", "prometheus") not in objects
    deployment = objects[("Deployment", install.DASHBOARD)]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--prometheus=http://prom.monitoring:9090" in args


def test_weft_viz_install_prints_manifests_kubectl_can_apply(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as ended:
        main(["viz", "install"])
    assert ended.value.code == 0
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    kinds = [d["kind"] for d in documents]
    assert kinds[0] == "Namespace"
    assert {"Deployment", "Service", "ServiceAccount", "ClusterRole", "ConfigMap"} <= set(kinds)
    assert all(
        d["metadata"].get("namespace", install.NAMESPACE) == install.NAMESPACE for d in documents
    )


def test_weft_dashboard_port_forwards_the_dashboards_service() -> None:
    args = build_parser().parse_args(["dashboard", "--port", "0", "--context", "kind"])
    command = port_forward_command(args, "kubectl")
    assert command == [
        "kubectl", "--context=kind", "-n", install.NAMESPACE, "port-forward",
        "--address=127.0.0.1", f"service/{install.DASHBOARD}", f":{install.DASHBOARD_PORT}",
    ]  # fmt: skip
