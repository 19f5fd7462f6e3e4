"""Static checks of the CRDs in crds/ and of the sample manifests in crds/examples/.

No cluster is needed. The checks are:

- every CRD file is an apiextensions.k8s.io/v1 CRD with the group, kind, versions,
  shortNames and storage version Weft promises (see crds/*.yaml headers for the reasons);
- every version has a status subresource, the kstatus-style status schema and the printer
  columns the issue asks for;
- every schema is structural, as the API server requires (checked by a small walker below),
  and every property carries a description, so `kubectl explain` is useful;
- x-kubernetes-preserve-unknown-fields is used only where a field cannot be described
  structurally;
- every sample manifest validates against the schema of its version (a small validator
  below: types, required, enum, pattern, bounds, oneOf, unknown fields), and every served
  version of every kind has at least one sample.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "crds"
EXAMPLES_DIR = CRD_DIR / "examples"

Schema = dict[str, Any]


class Expected(NamedTuple):
    group: str
    kind: str
    plural: str
    versions: tuple[str, ...]
    storage: str
    short_names: tuple[str, ...]


EXPECTED: tuple[Expected, ...] = (
    Expected(
        "split.smi-spec.io",
        "TrafficSplit",
        "trafficsplits",
        ("v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"),
        "v1alpha4",
        ("ts",),
    ),
    Expected(
        "specs.smi-spec.io",
        "HTTPRouteGroup",
        "httproutegroups",
        ("v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"),
        "v1alpha4",
        ("htr",),
    ),
    Expected(
        "specs.smi-spec.io",
        "TCPRoute",
        "tcproutes",
        ("v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"),
        "v1alpha4",
        ("tr",),
    ),
    Expected("specs.smi-spec.io", "UDPRoute", "udproutes", ("v1alpha4",), "v1alpha4", ("ur",)),
    Expected(
        "access.smi-spec.io",
        "TrafficTarget",
        "traffictargets",
        ("v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"),
        "v1alpha3",
        ("tt",),
    ),
    Expected(
        "access.smi-spec.io",
        "IdentityBinding",
        "identitybindings",
        ("v1alpha4",),
        "v1alpha4",
        ("ib",),
    ),
    Expected(
        "linkerd.io",
        "ServiceProfile",
        "serviceprofiles",
        ("v1alpha1", "v1alpha2"),
        "v1alpha2",
        ("sp",),
    ),
    Expected(
        "policy.linkerd.io",
        "Server",
        "servers",
        ("v1beta1", "v1beta2", "v1beta3"),
        "v1beta3",
        ("srv",),
    ),
    Expected(
        "policy.linkerd.io",
        "ServerAuthorization",
        "serverauthorizations",
        ("v1beta1",),
        "v1beta1",
        ("saz", "serverauthz", "srvauthz"),
    ),
    Expected(
        "policy.linkerd.io",
        "AuthorizationPolicy",
        "authorizationpolicies",
        ("v1alpha1",),
        "v1alpha1",
        ("authzpolicy",),
    ),
    Expected(
        "policy.linkerd.io",
        "MeshTLSAuthentication",
        "meshtlsauthentications",
        ("v1alpha1",),
        "v1alpha1",
        ("meshtlsauthn",),
    ),
    Expected(
        "policy.linkerd.io",
        "NetworkAuthentication",
        "networkauthentications",
        ("v1alpha1",),
        "v1alpha1",
        ("netauthn", "networkauthn"),
    ),
    Expected("policy.linkerd.io", "HTTPRoute", "httproutes", ("v1beta3",), "v1beta3", ()),
)
BY_KIND = {(e.group, e.kind): e for e in EXPECTED}
ACCEPTED_PATH = '.status.conditions[?(@.type=="Accepted")].status'


def condition_path(kind: str) -> str:
    return f'.status.conditions[?(@.type=="{kind}")].status'


# Where a field cannot be described structurally, and only there, the schema keeps what was
# written: HTTPRouteGroup headers (map or list), ServiceProfile nested conditions, HTTPRoute
# filter configuration.
PRESERVE_ALLOWED = {
    "headers",
    "all[]",
    "any[]",
    "not",
    "filters[]",
    "requestHeaderModifier",
    "responseHeaderModifier",
    "requestRedirect",
}


# ----------------------------------------------------------------------------- loading


def _load_crds() -> dict[str, dict[str, Any]]:
    crds = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert len(docs) == 1, f"{path.name}: expected exactly one document"
        crds[path.name] = docs[0]
    return crds


CRDS = _load_crds()


def _crd_for(exp: Expected) -> dict[str, Any]:
    return CRDS[f"{exp.group}_{exp.plural}.yaml"]


def _version(crd: dict[str, Any], name: str) -> dict[str, Any]:
    (v,) = [v for v in crd["spec"]["versions"] if v["name"] == name]
    return v


def _schema(exp: Expected, version: str) -> Schema:
    schema: Schema = _version(_crd_for(exp), version)["schema"]["openAPIV3Schema"]
    return schema


def _load_examples() -> list[tuple[str, int, dict[str, Any]]]:
    out = []
    for path in sorted(EXAMPLES_DIR.glob("*.yaml")):
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc is not None:
                out.append((path.name, i, doc))
    return out


EXAMPLES = _load_examples()


def _versions_of(crd: dict[str, Any]) -> list[tuple[str, Schema]]:
    return [(v["name"], v["schema"]["openAPIV3Schema"]) for v in crd["spec"]["versions"]]


ALL_SCHEMAS = [
    pytest.param(schema, id=f"{name}:{vname}")
    for name, crd in CRDS.items()
    for vname, schema in _versions_of(crd)
]


# ------------------------------------------------------------------- structural walker


def _is_int_or_string_anyof(node: Schema) -> bool:
    return node.get("x-kubernetes-int-or-string") is True and node.get("anyOf") == [
        {"type": "integer"},
        {"type": "string"},
    ]


def structural_errors(node: Schema, path: str = "") -> list[str]:
    """Errors that would make the API server reject this schema, plus missing descriptions.

    Follows the structural-schema rules of apiextensions.k8s.io/v1: every node has a type
    unless it is int-or-string or preserves unknown fields; `properties` only on objects,
    `items` only (and always) on arrays; no type, description, default or nullable inside
    anyOf/oneOf/allOf/not (except the int-or-string anyOf); no properties and
    additionalProperties together; list-map keys required.
    """
    errs: list[str] = []
    here = path or "<root>"
    int_or_string = node.get("x-kubernetes-int-or-string") is True
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    typ = node.get("type")
    if typ is None and not (int_or_string or preserve):
        errs.append(f"{here}: no type")
    if int_or_string and typ is not None:
        errs.append(f"{here}: x-kubernetes-int-or-string with a type")
    if typ is not None and typ not in {"object", "array", "string", "integer", "number", "boolean"}:
        errs.append(f"{here}: unknown type {typ!r}")
    if "properties" in node and typ not in (None, "object"):
        errs.append(f"{here}: properties on a {typ}")
    if "properties" in node and "additionalProperties" in node:
        errs.append(f"{here}: both properties and additionalProperties")
    if typ == "array" and "items" not in node:
        errs.append(f"{here}: array without items")
    if "items" in node and typ != "array":
        errs.append(f"{here}: items on a {typ}")
    if "nullable" in node:
        errs.append(f"{here}: nullable is not used in Weft schemas")
    for key in ("anyOf", "oneOf", "allOf", "not"):
        if key not in node:
            continue
        if key == "anyOf" and _is_int_or_string_anyof(node):
            continue
        subs = node[key] if isinstance(node[key], list) else [node[key]]
        for sub in subs:
            bad = {"type", "description", "default", "additionalProperties", "nullable"} & set(sub)
            if bad:
                errs.append(f"{here}: {key} sets {sorted(bad)}")
    props: dict[str, Schema] = node.get("properties", {})
    for req in node.get("required", []):
        if req not in props and not preserve:
            errs.append(f"{here}: required {req!r} is not a property")
    for sub in node.get("oneOf", []) + node.get("anyOf", []):
        for req in sub.get("required", []):
            if req not in props:
                errs.append(f"{here}: oneOf/anyOf requires unknown {req!r}")
    if node.get("x-kubernetes-list-type") == "map":
        item_required = node.get("items", {}).get("required", [])
        for key in node.get("x-kubernetes-list-map-keys", []):
            if key not in item_required:
                errs.append(f"{here}: list-map key {key!r} is not required in items")
    for name, child in props.items():
        child_path = f"{path}.{name}" if path else name
        if not str(child.get("description", "")).strip():
            errs.append(f"{child_path}: no description")
        errs.extend(structural_errors(child, child_path))
    if "items" in node:
        items = node["items"]
        if not str(items.get("description", "")).strip():
            errs.append(f"{here}[]: no description")
        errs.extend(structural_errors(items, f"{path}[]"))
    if isinstance(node.get("additionalProperties"), dict):
        errs.extend(structural_errors(node["additionalProperties"], f"{path}{{*}}"))
    return errs


def preserve_paths(node: Schema, path: str = "") -> list[str]:
    found = [path] if node.get("x-kubernetes-preserve-unknown-fields") else []
    for name, child in node.get("properties", {}).items():
        found += preserve_paths(child, f"{path}.{name}" if path else name)
    if "items" in node:
        found += preserve_paths(node["items"], f"{path}[]")
    return found


# ---------------------------------------------------------------------- value validator

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def _type_ok(value: Any, typ: str) -> bool:
    if isinstance(value, bool) and typ != "boolean":
        return False
    return isinstance(value, _TYPES[typ])


def validate(value: Any, node: Schema, path: str = "") -> list[str]:
    """Validate a value against a structural schema, the way the API server would.

    Unknown fields are errors (kubectl's default --validate=strict). Defaults are not
    applied, which only matters for fields that are both required and defaulted (none are).
    """
    here = path or "<root>"
    if node.get("x-kubernetes-int-or-string"):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            return [f"{here}: {value!r} is neither an integer nor a string"]
        if isinstance(value, str) and "pattern" in node and not re.search(node["pattern"], value):
            return [f"{here}: {value!r} does not match {node['pattern']}"]
        return []
    typ = node.get("type")
    if typ is None:
        return [] if node.get("x-kubernetes-preserve-unknown-fields") else [f"{here}: untyped"]
    if not _type_ok(value, typ):
        return [f"{here}: {value!r} is not of type {typ}"]
    errs: list[str] = []
    if "enum" in node and value not in node["enum"]:
        errs.append(f"{here}: {value!r} not in {node['enum']}")
    if typ == "string":
        if "pattern" in node and not re.search(node["pattern"], value):
            errs.append(f"{here}: {value!r} does not match {node['pattern']}")
        if len(value) < node.get("minLength", 0):
            errs.append(f"{here}: shorter than {node['minLength']}")
        if "maxLength" in node and len(value) > node["maxLength"]:
            errs.append(f"{here}: longer than {node['maxLength']}")
    if typ in ("integer", "number"):
        if "minimum" in node and value < node["minimum"]:
            errs.append(f"{here}: {value} < {node['minimum']}")
        if "maximum" in node and value > node["maximum"]:
            errs.append(f"{here}: {value} > {node['maximum']}")
    if typ == "array":
        if len(value) < node.get("minItems", 0):
            errs.append(f"{here}: fewer than {node['minItems']} items")
        if "maxItems" in node and len(value) > node["maxItems"]:
            errs.append(f"{here}: more than {node['maxItems']} items")
        for i, item in enumerate(value):
            errs.extend(validate(item, node["items"], f"{path}[{i}]"))
    if typ == "object":
        props: dict[str, Schema] = node.get("properties", {})
        for req in node.get("required", []):
            if req not in value:
                errs.append(f"{here}: missing required field {req!r}")
        if "oneOf" in node:
            hits = sum(all(r in value for r in sub.get("required", [])) for sub in node["oneOf"])
            if hits != 1:
                errs.append(f"{here}: matches {hits} of the oneOf alternatives, not exactly 1")
        extra = node.get("additionalProperties")
        for key, child in value.items():
            child_path = f"{path}.{key}" if path else key
            if key in props:
                errs.extend(validate(child, props[key], child_path))
            elif isinstance(extra, dict):
                errs.extend(validate(child, extra, child_path))
            elif not node.get("x-kubernetes-preserve-unknown-fields"):
                errs.append(f"{child_path}: unknown field")
    return errs


def validate_object(doc: dict[str, Any], root: Schema) -> list[str]:
    body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")}
    return validate(body, root)


def _defaults(node: Schema, path: str = "") -> list[tuple[str, Any, Schema]]:
    found = [(path, node["default"], node)] if "default" in node else []
    for name, child in node.get("properties", {}).items():
        found += _defaults(child, f"{path}.{name}")
    if "items" in node:
        found += _defaults(node["items"], f"{path}[]")
    return found


# ------------------------------------------------------------------------ CRD identity


def test_crds_dir_holds_exactly_the_expected_files() -> None:
    expected = {f"{e.group}_{e.plural}.yaml" for e in EXPECTED}
    assert set(CRDS) == expected


@pytest.mark.parametrize("exp", EXPECTED, ids=lambda e: e.kind)
def test_crd_identity(exp: Expected) -> None:
    crd = _crd_for(exp)
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == f"{exp.plural}.{exp.group}"
    spec = crd["spec"]
    assert spec["group"] == exp.group
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == exp.kind
    assert spec["names"]["plural"] == exp.plural
    assert spec["names"]["singular"] == exp.kind.lower()
    assert tuple(spec["names"].get("shortNames", ())) == exp.short_names
    assert "preserveUnknownFields" not in spec or spec["preserveUnknownFields"] is False
    assert spec.get("conversion", {"strategy": "None"})["strategy"] == "None"


@pytest.mark.parametrize("exp", EXPECTED, ids=lambda e: e.kind)
def test_versions_served_and_one_storage(exp: Expected) -> None:
    versions = _crd_for(exp)["spec"]["versions"]
    assert tuple(v["name"] for v in versions) == exp.versions
    assert all(v["served"] is True for v in versions)
    storage = [v["name"] for v in versions if v["storage"]]
    assert storage == [exp.storage]


def test_short_names_are_unique() -> None:
    names = [s for e in EXPECTED for s in e.short_names]
    assert len(names) == len(set(names))


# ------------------------------------------------------------ status and printer columns


@pytest.mark.parametrize("exp", EXPECTED, ids=lambda e: e.kind)
def test_every_version_has_status_subresource_and_schema(exp: Expected) -> None:
    for v in _crd_for(exp)["spec"]["versions"]:
        assert v.get("subresources", {}).get("status") == {}, v["name"]
        status = v["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert status["type"] == "object"
        assert "x-kubernetes-preserve-unknown-fields" not in status
        props = status["properties"]
        assert props["observedGeneration"]["type"] == "integer"
        assert props["observedGeneration"]["format"] == "int64"
        conditions = props["conditions"]
        assert conditions["type"] == "array"
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]
        item = conditions["items"]
        assert set(item["required"]) >= {"type", "status"}
        cprops = item["properties"]
        assert set(cprops) == {
            "type",
            "status",
            "reason",
            "message",
            "observedGeneration",
            "lastTransitionTime",
        }
        assert cprops["status"]["enum"] == ["True", "False", "Unknown"]
        assert cprops["observedGeneration"]["format"] == "int64"
        assert cprops["lastTransitionTime"]["format"] == "date-time"
        proxies = props["proxies"]["properties"]
        assert proxies["acked"]["type"] == "integer"
        assert proxies["total"]["type"] == "integer"


EXTRA_COLUMNS = {
    "TrafficSplit": {"Service": ".spec.service"},
    "Server": {"Port": ".spec.port", "Protocol": ".spec.proxyProtocol"},
    "ServerAuthorization": {"Server": ".spec.server.name"},
}


@pytest.mark.parametrize("exp", EXPECTED, ids=lambda e: e.kind)
def test_printer_columns(exp: Expected) -> None:
    for v in _crd_for(exp)["spec"]["versions"]:
        cols = {c["name"]: c for c in v["additionalPrinterColumns"]}
        assert cols["Accepted"]["jsonPath"] == ACCEPTED_PATH
        assert cols["Accepted"]["priority"] == 1  # -o wide: Ready says more
        # Ready, not Accepted, by default: a split naming no existing Service is accepted.
        names = [c["name"] for c in v["additionalPrinterColumns"] if not c.get("priority")]
        assert names[-3:] == ["Ready", "Programmed", "Age"]
        assert cols["Ready"]["jsonPath"] == condition_path("Ready")
        assert cols["Programmed"]["jsonPath"] == condition_path("Programmed")
        assert cols["Age"] == {
            **cols["Age"],
            "type": "date",
            "jsonPath": ".metadata.creationTimestamp",
        }
        for name, path in EXTRA_COLUMNS.get(exp.kind, {}).items():
            assert cols[name]["jsonPath"] == path
        for c in cols.values():
            assert c["type"] in {"integer", "number", "string", "boolean", "date"}
            assert c["jsonPath"].startswith(".")
            assert c.get("description")


# ------------------------------------------------------------------ structural schemas


@pytest.mark.parametrize("schema", ALL_SCHEMAS)
def test_schema_is_structural_and_described(schema: Schema) -> None:
    assert schema["type"] == "object"
    assert "metadata" not in schema.get("properties", {})
    assert structural_errors(schema) == []


@pytest.mark.parametrize("schema", ALL_SCHEMAS)
def test_preserve_unknown_fields_only_where_needed(schema: Schema) -> None:
    paths = preserve_paths(schema)
    assert not [p for p in paths if p.startswith("status")]
    assert not [p for p in paths if p.rsplit(".", 1)[-1] not in PRESERVE_ALLOWED]


@pytest.mark.parametrize("schema", ALL_SCHEMAS)
def test_defaults_are_valid(schema: Schema) -> None:
    for path, default, node in _defaults(schema):
        assert validate(default, node, path) == [], path


def test_structural_walker_catches_mistakes() -> None:
    bad: Schema = {
        "type": "object",
        "properties": {
            "a": {"description": "no type"},
            "b": {"type": "array", "description": "no items"},
            "c": {"type": "string"},
            "d": {
                "description": "typed anyOf",
                "type": "object",
                "anyOf": [{"type": "string"}],
            },
        },
    }
    errs = structural_errors(bad)
    assert any(e.startswith("a: no type") for e in errs)
    assert any(e.startswith("b: array without items") for e in errs)
    assert any(e.startswith("c: no description") for e in errs)
    assert any(e.startswith("d: anyOf sets") for e in errs)


# ------------------------------------------------------------------- shapes per version


def _spec_props(exp: Expected, version: str) -> dict[str, Schema]:
    props: dict[str, Schema] = _schema(exp, version)["properties"]["spec"]["properties"]
    return props


def test_trafficsplit_weights() -> None:
    exp = BY_KIND[("split.smi-spec.io", "TrafficSplit")]
    w1 = _spec_props(exp, "v1alpha1")["backends"]["items"]["properties"]["weight"]
    assert w1["x-kubernetes-int-or-string"] is True
    for v in ("v1alpha2", "v1alpha3", "v1alpha4"):
        props = _spec_props(exp, v)
        assert props["backends"]["items"]["properties"]["weight"]["type"] == "integer"
        assert ("matches" in props) == (v in ("v1alpha3", "v1alpha4"))
    match = _spec_props(exp, "v1alpha4")["matches"]["items"]
    assert set(match["properties"]) == {"kind", "name", "apiGroup"}
    assert match["required"] == ["kind", "name"]


def test_httproutegroup_matches_location() -> None:
    exp = BY_KIND[("specs.smi-spec.io", "HTTPRouteGroup")]
    for v in ("v1alpha1", "v1alpha2"):
        root = _schema(exp, v)
        assert "spec" not in root["properties"]
        assert "matches" in root["properties"]
    for v in ("v1alpha3", "v1alpha4"):
        item = _spec_props(exp, v)["matches"]["items"]
        assert set(item["properties"]) == {"name", "pathRegex", "methods", "headers"}
        headers = item["properties"]["headers"]
        assert headers["x-kubernetes-preserve-unknown-fields"] is True
        assert "type" not in headers  # a map and a list must both be accepted


def test_route_and_target_shapes() -> None:
    tcp = BY_KIND[("specs.smi-spec.io", "TCPRoute")]
    udp = BY_KIND[("specs.smi-spec.io", "UDPRoute")]
    for exp in (tcp, udp):
        matches = _spec_props(exp, "v1alpha4")["matches"]
        assert matches["type"] == "object"
        assert set(matches["properties"]) == {"name", "ports"}
    tt = BY_KIND[("access.smi-spec.io", "TrafficTarget")]
    v1 = _schema(tt, "v1alpha1")["properties"]
    assert {"destination", "specs", "sources"} <= set(v1)
    assert "port" in v1["destination"]["properties"]
    v2 = _spec_props(tt, "v1alpha2")
    assert set(v2) == {"destination", "rules", "sources"}
    v3 = _spec_props(tt, "v1alpha3")
    assert set(v3["rules"]["items"]["properties"]) == {"kind", "name", "matches"}
    assert "UDPRoute" in v3["rules"]["items"]["properties"]["kind"]["enum"]


def test_serviceprofile_conditions() -> None:
    exp = BY_KIND[("linkerd.io", "ServiceProfile")]
    for v in exp.versions:
        route = _spec_props(exp, v)["routes"]["items"]["properties"]
        assert set(route) == {"name", "condition", "responseClasses", "isRetryable", "timeout"}
        req = route["condition"]["properties"]
        assert set(req) == {"pathRegex", "method", "all", "any", "not"}
        rsp = route["responseClasses"]["items"]["properties"]["condition"]["properties"]
        assert set(rsp) == {"status", "all", "any", "not"}
        for cond in (req, rsp):
            assert "type" not in cond["not"]  # an object or a list
            assert cond["not"]["x-kubernetes-preserve-unknown-fields"] is True
        budget = _spec_props(exp, v)["retryBudget"]["properties"]
        assert budget["retryRatio"]["type"] == "number"
        assert budget["minRetriesPerSecond"]["type"] == "integer"
        assert budget["ttl"]["type"] == "string"
        weight = _spec_props(exp, v)["dstOverrides"]["items"]["properties"]["weight"]
        assert weight["x-kubernetes-int-or-string"] is True


def test_server_protocol_and_access_policy() -> None:
    exp = BY_KIND[("policy.linkerd.io", "Server")]
    for v in exp.versions:
        props = _spec_props(exp, v)
        proto = props["proxyProtocol"]
        assert proto["enum"] == ["unknown", "HTTP/1", "HTTP/2", "gRPC", "opaque", "TLS"]
        assert proto["default"] == "unknown"
        assert props["port"]["x-kubernetes-int-or-string"] is True
        assert ("accessPolicy" in props) == (v == "v1beta3")
    assert _spec_props(exp, "v1beta3")["accessPolicy"]["default"] == "deny"


# --------------------------------------------------------------------------- examples


@pytest.mark.parametrize("exp", EXPECTED, ids=lambda e: e.kind)
def test_every_version_has_an_example(exp: Expected) -> None:
    seen = {
        doc["apiVersion"].split("/")[1]
        for _, _, doc in EXAMPLES
        if doc["kind"] == exp.kind and doc["apiVersion"].split("/")[0] == exp.group
    }
    assert seen == set(exp.versions)


@pytest.mark.parametrize(
    "doc",
    [pytest.param(doc, id=f"{name}#{i}") for name, i, doc in EXAMPLES],
)
def test_example_validates(doc: dict[str, Any]) -> None:
    group, version = doc["apiVersion"].split("/")
    exp = BY_KIND[(group, doc["kind"])]
    assert version in exp.versions
    name = doc["metadata"]["name"]
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", name)
    assert "status" not in doc
    assert validate_object(doc, _schema(exp, version)) == []


@pytest.mark.parametrize("version", ["v1alpha3", "v1alpha4"])
def test_route_groups_take_top_level_matches_where_the_next_version_does(version: str) -> None:
    """SMI's own A/B example writes top-level matches; v1alpha3 refused what v1alpha4 took."""
    body = {"matches": [{"name": "firefox-users", "headers": [{"user-agent": ".*Firefox.*"}]}]}
    assert _errors(SMI_SPECS, "HTTPRouteGroup", version, body) == []


def test_example_names_are_unique_per_kind() -> None:
    keys = [(doc["kind"], doc["metadata"]["name"]) for _, _, doc in EXAMPLES]
    assert len(keys) == len(set(keys))


def _errors(group: str, kind: str, version: str, body: dict[str, Any]) -> list[str]:
    return validate_object(body, _schema(BY_KIND[(group, kind)], version))


SMI_SPLIT = ("split.smi-spec.io", "TrafficSplit")
SMI_SPECS = "specs.smi-spec.io"
POLICY = "policy.linkerd.io"


@pytest.mark.parametrize(
    ("group", "kind", "version", "body", "needle"),
    [
        (
            *SMI_SPLIT,
            "v1alpha2",
            {"spec": {"service": "a", "backends": [{"service": "b", "weight": "500m"}]}},
            "not of type integer",
        ),
        (
            *SMI_SPLIT,
            "v1alpha1",
            {"spec": {"service": "a", "backends": [{"service": "b", "weight": "half"}]}},
            "does not match",
        ),
        (
            *SMI_SPLIT,
            "v1alpha2",
            {"spec": {"service": "a", "backends": [], "matches": []}},
            "unknown field",
        ),
        (
            SMI_SPECS,
            "HTTPRouteGroup",
            "v1alpha1",
            {"spec": {"matches": [{"name": "x"}]}},
            "missing required field 'matches'",
        ),
        (
            SMI_SPECS,
            "HTTPRouteGroup",
            "v1alpha4",
            {"spec": {"matches": [{"name": "x", "methods": ["FETCH"]}]}},
            "not in",
        ),
        (
            POLICY,
            "Server",
            "v1beta3",
            {"spec": {"podSelector": {}, "port": 80, "proxyProtocol": "HTTP/3"}},
            "not in",
        ),
        (
            POLICY,
            "Server",
            "v1beta3",
            {"spec": {"podSelector": {}, "externalWorkloadSelector": {}, "port": 80}},
            "oneOf",
        ),
        (POLICY, "Server", "v1beta1", {"spec": {"port": 80}}, "missing required"),
        (POLICY, "MeshTLSAuthentication", "v1alpha1", {"spec": {}}, "oneOf"),
        (
            POLICY,
            "ServerAuthorization",
            "v1beta1",
            {"spec": {"server": {"name": "Web"}, "client": {}}},
            "does not match",
        ),
        ("linkerd.io", "ServiceProfile", "v1alpha1", {"spec": {}}, "missing required"),
    ],
)
def test_schemas_reject_invalid_objects(
    group: str, kind: str, version: str, body: dict[str, Any], needle: str
) -> None:
    errs = _errors(group, kind, version, body)
    assert any(needle in e for e in errs), errs


def test_headers_accept_map_and_list_forms() -> None:
    for headers in ({"user-agent": ".*Firefox.*"}, [{"user-agent": ".*Firefox.*"}]):
        body = {"spec": {"matches": [{"name": "ff", "headers": headers}]}}
        assert _errors(SMI_SPECS, "HTTPRouteGroup", "v1alpha4", body) == []


def test_serviceprofile_not_accepts_object_and_list() -> None:
    for not_ in ({"method": "GET"}, [{"method": "GET"}]):
        body = {"spec": {"routes": [{"name": "r", "condition": {"not": not_}}]}}
        assert _errors("linkerd.io", "ServiceProfile", "v1alpha2", body) == []
