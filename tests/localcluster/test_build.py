"""How the local cluster builds Kubernetes and etcd: wrapper modules and Go checks."""

from __future__ import annotations

import pytest

from weft_localcluster import build, versions


def test_staging_modules_take_the_published_twin_of_the_kubernetes_version() -> None:
    assert versions.staging_version("v1.36.3") == "v0.36.3"
    go_mod = build.wrapper_go_mod(build.kubernetes_bundle("v1.36.3"))
    assert "require k8s.io/kubernetes v1.36.3" in go_mod
    for module in ("api", "client-go", "apiserver", "kubectl"):
        assert f"\tk8s.io/{module} => k8s.io/{module} v0.36.3\n" in go_mod


def test_kubernetes_binaries_report_their_real_version() -> None:
    ldflags = build.kubernetes_bundle("v1.36.3").ldflags
    assert "k8s.io/component-base/version.gitVersion=v1.36.3" in ldflags
    assert "gitMajor=1" in ldflags
    assert "gitMinor=36" in ldflags


def test_prometheus_wrapper_replaces_klog_as_prometheus_does_and_names_its_release() -> None:
    """Prometheus' go.mod replaces klog; `go install ...@version` refuses such modules,
    so a wrapper module repeats the replaces. Debian's Prometheus lacks Kubernetes
    discovery, which the shipped scrape config needs."""
    bundle = build.prometheus_bundle("v0.53.2")
    go_mod = build.wrapper_go_mod(bundle)
    assert "require github.com/prometheus/prometheus v0.53.2" in go_mod
    assert "\tk8s.io/klog/v2 => github.com/simonpasquier/klog-gokit/v3 v3.3.0\n" in go_mod
    assert "github.com/prometheus/common/version.Version=2.53.2" in bundle.ldflags
    assert build.prometheus_path().parent.name == "prometheus-v0.53.2"


def test_etcd_wrapper_requires_the_server_module_without_replaces() -> None:
    go_mod = build.wrapper_go_mod(build.etcd_bundle("v3.6.16"))
    assert "require go.etcd.io/etcd/server/v3 v3.6.16" in go_mod
    assert "replace" not in go_mod


def test_missing_go_is_named_with_the_version_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(build.BuildError, match=r"Go is not installed.*Go >= 1\.26"):
        build.check_go()


@pytest.mark.parametrize(("text", "expected"), [("go1.26.8", (1, 26)), ("go1.9\n", (1, 9))])
def test_go_versions_are_read_from_goversion(text: str, expected: tuple[int, int]) -> None:
    assert build.parse_go_version(text) == expected


def test_an_unreadable_go_version_is_an_error() -> None:
    with pytest.raises(build.BuildError, match="cannot read the Go version"):
        build.parse_go_version("devel +abc")
