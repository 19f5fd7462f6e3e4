"""Pinned versions of the control-plane components the local cluster builds."""

from __future__ import annotations

KUBERNETES_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"
# Prometheus 2.53 (LTS) is Go module github.com/prometheus/prometheus v0.53.x. Debian's
# package is built without Kubernetes service discovery, which the shipped scrape config
# (weft_viz/scrape) and `weft viz install` need.
PROMETHEUS_VERSION = "v0.53.2"

# Tools built beside the cluster (go_tools.py).
HELM_VERSION = "v4.3.2"
# Flagger drives canary releases through the mesh (e2e/test_flagger.py); its CRDs are read
# from the same module's source (artifacts/flagger/crd.yaml).
FLAGGER_VERSION = "v1.44.0"
# The e2e tests' progressive-delivery controller (rollouts_build.py). v1.10.2 declares
# `go 1.26.10`, newer than the machines' Go.
ARGO_ROLLOUTS_VERSION = "v1.10.1"

# Kubernetes v1.36 declares `go 1.26.0` in its go.mod; older toolchains cannot build it.
MIN_GO_VERSION = (1, 26)

# k8s.io/kubernetes replaces these staging modules with local paths in its go.mod, so a
# module that requires it must replace each one with the published v0.x twin.
KUBERNETES_STAGING_MODULES = (
    "api",
    "apiextensions-apiserver",
    "apimachinery",
    "apiserver",
    "cli-runtime",
    "client-go",
    "cloud-provider",
    "cluster-bootstrap",
    "code-generator",
    "component-base",
    "component-helpers",
    "controller-manager",
    "cri-api",
    "cri-client",
    "cri-streaming",
    "csi-translation-lib",
    "dynamic-resource-allocation",
    "endpointslice",
    "externaljwt",
    "kms",
    "kube-aggregator",
    "kube-controller-manager",
    "kube-proxy",
    "kube-scheduler",
    "kubectl",
    "kubelet",
    "metrics",
    "mount-utils",
    "pod-security-admission",
    "sample-apiserver",
    "sample-controller",
    "streaming",
)

KUBERNETES_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")


def staging_version(kubernetes_version: str) -> str:
    """v1.36.3 -> v0.36.3: the published version of the staging modules."""
    major_minor_patch = kubernetes_version.lstrip("v").split(".")
    return "v0." + ".".join(major_minor_patch[1:])
