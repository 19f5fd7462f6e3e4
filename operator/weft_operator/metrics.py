"""The operator's own metrics (prometheus-client), served on its admin port."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OBJECTS = Gauge("weft_operator_objects", "Objects in the operator's index, by kind", ["kind"])
INVALID_OBJECTS = Gauge(
    "weft_operator_invalid_objects", "Objects that failed to parse, by kind", ["kind"]
)
RECONCILE_ERRORS = Counter(
    "weft_operator_reconcile_errors_total", "Events the operator failed to handle", ["kind"]
)
WRITE_ERRORS = Counter(
    "weft_operator_write_errors_total",
    "Status patches or Events the API server refused",
    ["kind", "what"],
)
STATUS_PATCHES = Counter(
    "weft_operator_status_patches_total", "Status patches written, by kind", ["kind"]
)
CATALOG_SECONDS = Histogram(
    "weft_operator_catalog_seconds",
    "Time to compute one proxy's configuration from the index",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)

# --- the config server ------------------------------------------------------------------
CONFIG_PROXIES = Gauge("weft_operator_config_proxies", "Proxies connected to the config server")
CONFIG_PUSHES = Counter(
    "weft_operator_config_pushes_total", "Config updates sent to proxies, full or delta", ["kind"]
)
CONFIG_PUSH_SECONDS = Histogram(
    "weft_operator_config_push_seconds",
    "From a change (or a proxy's request) reaching the config server to the proxy's reply",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CONFIG_REPLIES = Counter(
    "weft_operator_config_replies_total", "Proxies' replies to config updates", ["reply"]
)
CONFIG_PROTOCOL_ERRORS = Counter(
    "weft_operator_config_protocol_errors_total",
    "Requests or streams the config server refused, by reason",
    ["reason"],
)
CONFIG_REFUSALS = Counter(
    "weft_operator_config_refusals_total",
    "Config streams refused because the client's identity may not read the config its "
    "hello names, by reason",
    ["reason"],
)
