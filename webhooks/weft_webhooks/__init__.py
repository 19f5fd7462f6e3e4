"""Weft admission webhooks: injection, validation, conversion."""
