"""The proxy image installs weft without extras (Dockerfile target `proxy`): everything
`python -m weft_proxy`, its key maker and proxy-init import must come with that base
install, and the control plane's heavy dependencies must not (issue 15: paid in every
pod)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

from packaging.requirements import Requirement

# Top-level modules the proxy's imports add (not those of the interpreter's start-up,
# such as setuptools' _distutils_hack, nor the standard library's).
IMPORTED = """
import json, sys
before = {name.split(".")[0] for name in sys.modules} | set(sys.stdlib_module_names)
import weft_proxy.main, weft_proxy.init.main, weft_proxy.identity.keygen_process
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} - before)))
"""


def base_install(distribution: str = "weft") -> set[str]:
    """The distributions `pip install weft` brings: its requirements without extras,
    and theirs, transitively (canonical names)."""
    found: set[str] = set()
    pending = [distribution]
    while pending:
        name = pending.pop()
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue
            canonical = requirement.name.lower().replace("_", "-")
            if canonical not in found:
                found.add(canonical)
                pending.append(canonical)
    return found


def test_what_the_proxy_imports_comes_with_the_base_install() -> None:
    out = subprocess.run(
        [sys.executable, "-c", IMPORTED], capture_output=True, text=True, check=True
    ).stdout
    modules = json.loads(out)
    providers = metadata.packages_distributions()
    needed = {
        dist.lower().replace("_", "-")
        for module in modules
        for dist in providers.get(module, ())
        if dist.lower() != "weft"  # ourselves, and the editable install's finder
    }
    assert needed, modules
    assert needed <= base_install(), (
        f"imported by the proxy, not in the base install: {needed - base_install()}"
    )


def test_the_base_install_leaves_out_the_control_planes_dependencies() -> None:
    heavy = {"grpcio", "kopf", "kubernetes-asyncio", "pydantic", "jinja2", "aiohttp", "rich"}
    assert not heavy & base_install()


LAZY_RE2 = """
import sys
import weft_proxy.main
from weft_api.config import RequestMatch
from weft_proxy.policies.request_match import RequestHead, compile_request_match

by_method = compile_request_match(RequestMatch(method="GET"))
loaded_without_regex = "re2" in sys.modules
by_regex = compile_request_match(RequestMatch(path_regex="^/api/[0-9]+$"))
print(loaded_without_regex, by_method(RequestHead("GET", "/")))
print(by_regex(RequestHead("GET", "/api/7")))
"""


def test_re2_is_loaded_by_the_first_regex_route_not_by_every_proxy() -> None:
    """Most proxies have no regex route; RE2's module is about 1.6 MiB in each (issue 15)."""
    out = subprocess.run(
        [sys.executable, "-c", LAZY_RE2], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "True", "True"]
