"""Pure functions from the index to proxy configuration (`weft_api.config`)."""

from weft_operator.catalog.outbound import build_outbound_service
from weft_operator.catalog.proxy import build_proxy_config
from weft_operator.catalog.settings import MeshSettings

__all__ = ["MeshSettings", "build_outbound_service", "build_proxy_config"]
