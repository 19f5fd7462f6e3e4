"""CRD version conversion, pure: TrafficSplit, HTTPRouteGroup and TrafficTarget."""

from weft_webhooks.conversion.convert import CONVERTERS, ConversionError, convert

__all__ = ["CONVERTERS", "ConversionError", "convert"]
