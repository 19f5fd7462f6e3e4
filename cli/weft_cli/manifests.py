"""Install manifests, rendered from jinja2 templates shipped in this package."""

from __future__ import annotations

import base64
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from weft_api import mesh
from weft_api.mesh import TRUST_ROOTS
from weft_resources.kinds import WATCHED
from weft_webhooks import ca_secret, endpoints

DEFAULT_NAMESPACE = "weft"
WEBHOOKS_SERVICE = "weft-webhooks"
WEBHOOKS_SERVICE_PORT = 443


def _b64encode(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


_env = jinja2.Environment(
    loader=jinja2.PackageLoader("weft_cli", "templates"),
    undefined=jinja2.StrictUndefined,  # a missing value is an error, not an empty string
    keep_trailing_newline=True,
)
_env.filters["b64encode"] = _b64encode


def render(template: str, **values: Any) -> str:
    return _env.get_template(f"{template}.yaml.j2").render(**values)


def namespace_manifest(namespace: str = DEFAULT_NAMESPACE) -> str:
    return render("namespace", namespace=namespace, opt_out_label=mesh.ADMISSION_WEBHOOKS_LABEL)


def operator_rbac(namespace: str = DEFAULT_NAMESPACE, *, with_namespace: bool = True) -> str:
    rbac = render("operator-rbac", namespace=namespace)
    return f"{namespace_manifest(namespace)}---\n{rbac}" if with_namespace else rbac


def crd_dir() -> Path:
    """The CRDs shipped in this package (`weft_cli/crds` links to the checkout's crds/,
    which the wheel carries as files)."""
    return (Path(str(resources.files("weft_cli"))) / "crds").resolve()  # kubectl: no links


def crd_files() -> list[Path]:
    """Weft's CRD files, in a stable order (examples/ holds sample resources)."""
    return sorted(crd_dir().glob("*.yaml"))


def webhooks_rbac(namespace: str = DEFAULT_NAMESPACE, *, with_namespace: bool = True) -> str:
    rbac = render(
        "webhooks-rbac",
        namespace=namespace,
        mutating_configuration=endpoints.MUTATING_CONFIGURATION,
        validating_configuration=endpoints.VALIDATING_CONFIGURATION,
        converted_crds=endpoints.CONVERTED_CRDS,
        trust_roots=TRUST_ROOTS,
        ca_secret=ca_secret.SECRET,
    )
    return f"{namespace_manifest(namespace)}---\n{rbac}" if with_namespace else rbac


def _webhook_configurations(namespace: str, **client: Any) -> str:
    return render(
        "webhooks",
        namespace=namespace,
        opt_out_label=mesh.ADMISSION_WEBHOOKS_LABEL,
        mutating_configuration=endpoints.MUTATING_CONFIGURATION,
        validating_configuration=endpoints.VALIDATING_CONFIGURATION,
        inject_webhook=endpoints.INJECT_WEBHOOK,
        validate_webhook=endpoints.VALIDATE_WEBHOOK,
        inject_path=endpoints.INJECT_PATH,
        validate_path=endpoints.VALIDATE_PATH,
        # Weft's own kinds: the custom resources it writes a status on.
        validated=[(w.group, w.plural) for w in WATCHED if w.reports_status],
        **client,
    )


def webhook_configurations(namespace: str, url: str, ca_bundle: str) -> str:
    """Both webhook configurations, calling the webhooks at `url` (https://host:port)."""
    return _webhook_configurations(namespace, url=url, service=None, ca_bundle=ca_bundle)


def webhook_configurations_for_service(namespace: str) -> str:
    """Both webhook configurations, calling the webhooks' Service; no caBundle: the
    webhooks publish theirs."""
    return _webhook_configurations(namespace, url="", service=_service(namespace), ca_bundle="")


def _service(namespace: str) -> dict[str, Any]:
    return {"name": WEBHOOKS_SERVICE, "namespace": namespace, "port": WEBHOOKS_SERVICE_PORT}


def _conversion(client_config: dict[str, Any]) -> dict[str, Any]:
    webhook = {"conversionReviewVersions": ["v1"], "clientConfig": client_config}
    return {"strategy": "Webhook", "webhook": webhook}


def crd_conversion(url: str, ca_bundle: str) -> dict[str, Any]:
    """A merge patch switching a converted CRD to the conversion webhook at `url`."""
    client_config = {"url": f"{url}{endpoints.CONVERT_PATH}", "caBundle": ca_bundle}
    return {"spec": {"conversion": _conversion(client_config)}}


def crd_conversion_for_service(namespace: str) -> dict[str, Any]:
    """`spec.conversion` of a converted CRD calling the webhooks' Service."""
    return _conversion({"service": {**_service(namespace), "path": endpoints.CONVERT_PATH}})
