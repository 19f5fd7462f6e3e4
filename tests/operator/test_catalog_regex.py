"""The catalog's regexes under the proxy's engine (RE2): each compiles and means what the
catalog intends (escaped exact values, prefixes, anchors)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from weft_api.config import ProxyIdentity, RequestMatch, ValueMatch
from weft_api.route_regex import compile_search
from weft_operator.catalog import build_proxy_config
from weft_operator.catalog.matches import exact_path, from_route_match, from_smi_match
from weft_operator.index import MeshIndex
from weft_resources import parse_resource
from weft_resources.httproute import RouteMatchSpec
from weft_resources.specs import HTTPMatch

GOLDEN = Path(__file__).parent / "golden"
SPECIAL = "/a.b-c~d#e f&g*h+i?j(k)l[m]n{o}p|q^r$s\\t\u00e9\u4e2d\U0001f600"
# Text the proxy can meet: whatever it decodes (latin-1 heads, UTF-8 query values).
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


def path_matches(match: RequestMatch, path: str) -> bool:
    assert match.path_regex is not None
    return compile_search(match.path_regex)(path)


def value_regex(match: RequestMatch) -> str:
    found = match.header or match.query_param
    assert isinstance(found, ValueMatch)
    return found.value_regex


def route_match(**spec: Any) -> RequestMatch:
    return from_route_match(RouteMatchSpec.model_validate(spec))


def test_an_exact_path_with_special_characters_matches_itself_only() -> None:
    match = exact_path(SPECIAL)
    assert path_matches(match, SPECIAL)
    for other in (SPECIAL + "/", SPECIAL[:-1], SPECIAL.replace(".", "X"), SPECIAL + "\n"):
        assert not path_matches(match, other)
    plain = exact_path("/a.b-c~d#e f")
    assert path_matches(plain, "/a.b-c~d#e f")
    assert not path_matches(plain, "/aXb-c~d#e f")
    assert not path_matches(plain, "/a.b-c~d#e f\n")  # RE2's `$`: the very end only


def test_every_code_point_escaped_reads_as_itself() -> None:
    code_points = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for start in range(0, len(code_points), 4096):
        chunk = "".join(code_points[start : start + 4096])
        search = compile_search(exact_path(chunk).path_regex or "")
        assert search(chunk)
        assert not search(chunk[1:])
        assert not search(chunk + "\n")


@given(TEXT, TEXT)
def test_exact_values_match_exactly(value: str, other: str) -> None:
    search = compile_search(exact_path(value).path_regex or "")
    assert search(value)
    assert search(other) == (other == value)


@given(TEXT)
def test_a_prefix_matches_whole_segments(segment: str) -> None:
    prefix = route_match(path={"type": "PathPrefix", "value": "/a.b/" + segment})
    base = ("/a.b/" + segment).rstrip("/")
    assert path_matches(prefix, base)
    assert path_matches(prefix, base + "/more")
    assert not path_matches(prefix, base + "x")
    assert not path_matches(prefix, "/aXb/" + segment)


def test_regexes_match_the_whole_value_and_smi_paths_their_start() -> None:
    route = route_match(
        path={"type": "RegularExpression", "value": "/books/[0-9]+"},
        queryParams=[{"type": "RegularExpression", "name": "format", "value": "json|xml"}],
    )
    assert route.all is not None
    path, query = route.all
    assert path_matches(path, "/books/12")
    assert not path_matches(path, "/books/12/reviews")
    assert not path_matches(path, "/books/12\n")
    value = compile_search(value_regex(query))
    assert value("json")
    assert value("xml")
    assert not value("jsonx")
    assert not value("json\n")

    smi = from_smi_match(HTTPMatch.model_validate({"pathRegex": "/books/[0-9]+"}))
    assert path_matches(smi, "/books/12/reviews")
    assert not path_matches(smi, "/shelf/books/12")


def test_inline_flags_stay_inside_the_users_regex() -> None:
    # Python 3.11 refuses `^(?:(?i)abc)$` (global flags not at the start); RE2 scopes them.
    route = route_match(headers=[{"type": "RegularExpression", "name": "x", "value": "(?i)v2"}])
    value = compile_search(value_regex(route))
    assert value("V2")
    assert not value("V2x")


def regexes_in(config: Any) -> Iterator[str]:
    if isinstance(config, tuple | list):
        for item in config:
            yield from regexes_in(item)
    elif dataclasses.is_dataclass(config) and not isinstance(config, type):
        for field in dataclasses.fields(config):
            value = getattr(config, field.name)
            if field.name in ("path_regex", "value_regex") and isinstance(value, str):
                yield value
            else:
                yield from regexes_in(value)


@pytest.mark.parametrize("case", sorted(path.name for path in GOLDEN.iterdir() if path.is_dir()))
def test_every_regex_in_the_golden_configs_compiles_in_re2(case: str) -> None:
    bodies = [b for b in yaml.safe_load_all((GOLDEN / case / "input.yaml").read_text()) if b]
    index = MeshIndex()
    for body in bodies:
        index.apply(parse_resource(body))
    proxy = yaml.safe_load((GOLDEN / case / "case.yaml").read_text())["proxy"]
    identity = ProxyIdentity(proxy["pod"], proxy["namespace"], proxy["serviceAccount"])
    for pattern in regexes_in(build_proxy_config(index, identity)):
        compile_search(pattern)  # raises RegexError if not
        assert re.match(r"\^", pattern), pattern  # anchored: a search is a match
