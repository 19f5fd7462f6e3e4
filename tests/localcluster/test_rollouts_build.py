"""How the Argo Rollouts controller is built: a wrapper module repeating its replaces."""

from __future__ import annotations

from weft_localcluster import build, rollouts_build

GO_MOD = """module github.com/argoproj/argo-rollouts

go 1.26.1

require k8s.io/api v0.34.5

replace github.com/solo => github.com/forked/solo v1.2.3

replace (
\tgithub.com/go-check/check => github.com/go-check/check v0.0.0-20180628173108-788fd7840127
\tk8s.io/api => k8s.io/api v0.34.5
\tk8s.io/local => ./staging/local
)
"""


def test_the_replaces_of_its_go_mod_are_repeated_without_local_paths() -> None:
    """`go install` refuses a module with replaces; a wrapper module must repeat them
    (they bind only the main module). A local path would not exist beside the wrapper."""
    replaces = rollouts_build.parse_replaces(GO_MOD)
    assert replaces == (
        ("github.com/solo", "github.com/forked/solo v1.2.3"),
        (
            "github.com/go-check/check",
            "github.com/go-check/check v0.0.0-20180628173108-788fd7840127",
        ),
        ("k8s.io/api", "k8s.io/api v0.34.5"),
    )
    bundle = build.Bundle("argo", rollouts_build.MODULE, "v1.10.1", replaces, ())
    assert "\tk8s.io/api => k8s.io/api v0.34.5\n" in build.wrapper_go_mod(bundle)
