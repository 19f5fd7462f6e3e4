"""Where the API server reaches each webhook, and the objects that tell it to."""

from __future__ import annotations

INJECT_PATH = "/inject"
VALIDATE_PATH = "/validate"
CONVERT_PATH = "/convert"

MUTATING_CONFIGURATION = "weft-proxy-injector"
VALIDATING_CONFIGURATION = "weft-validator"
INJECT_WEBHOOK = "inject.weft.dev"
VALIDATE_WEBHOOK = "validate.weft.dev"

# CustomResourceDefinitions whose versions the conversion webhook converts.
CONVERTED_CRDS = (
    "trafficsplits.split.smi-spec.io",
    "httproutegroups.specs.smi-spec.io",
    "traffictargets.access.smi-spec.io",
)
