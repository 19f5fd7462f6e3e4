"""Install manifests, rendered from jinja2 templates shipped in this package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from weft_api import mesh
from weft_operator.kinds import WATCHED
from weft_webhooks import endpoints

DEFAULT_NAMESPACE = "weft"

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("weft_cli", "templates"),
    undefined=jinja2.StrictUndefined,  # a missing value is an error, not an empty string
    keep_trailing_newline=True,
)


def render(template: str, **values: Any) -> str:
    return _env.get_template(f"{template}.yaml.j2").render(**values)


def operator_rbac(namespace: str = DEFAULT_NAMESPACE) -> str:
    return render("operator-rbac", namespace=namespace)


def crd_dir() -> Path:
    """crds/ of the checkout (an installed wheel carries them as package data later)."""
    here = Path(str(resources.files("weft_cli")))
    return here.parent.parent / "crds"


def webhooks_rbac(namespace: str = DEFAULT_NAMESPACE) -> str:
    return render(
        "webhooks-rbac",
        namespace=namespace,
        mutating_configuration=endpoints.MUTATING_CONFIGURATION,
        validating_configuration=endpoints.VALIDATING_CONFIGURATION,
        converted_crds=endpoints.CONVERTED_CRDS,
    )


def webhook_configurations(namespace: str, url: str, ca_bundle: str) -> str:
    """Both webhook configurations, calling the webhooks at `url` (https://host:port)."""
    return render(
        "webhooks",
        namespace=namespace,
        url=url,
        ca_bundle=ca_bundle,
        opt_out_label=mesh.ADMISSION_WEBHOOKS_LABEL,
        mutating_configuration=endpoints.MUTATING_CONFIGURATION,
        validating_configuration=endpoints.VALIDATING_CONFIGURATION,
        inject_webhook=endpoints.INJECT_WEBHOOK,
        validate_webhook=endpoints.VALIDATE_WEBHOOK,
        inject_path=endpoints.INJECT_PATH,
        validate_path=endpoints.VALIDATE_PATH,
        # Weft's own kinds: the custom resources it writes a status on.
        validated=[(w.group, w.plural) for w in WATCHED if w.reports_status],
    )


def crd_conversion(url: str, ca_bundle: str) -> dict[str, Any]:
    """A merge patch switching a converted CRD to the conversion webhook at `url`."""
    client_config = {"url": f"{url}{endpoints.CONVERT_PATH}", "caBundle": ca_bundle}
    webhook = {"conversionReviewVersions": ["v1"], "clientConfig": client_config}
    return {"spec": {"conversion": {"strategy": "Webhook", "webhook": webhook}}}
