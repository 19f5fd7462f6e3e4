"""Validation, pure: what Weft refuses at admission, and why, in words a person acts on."""

from weft_webhooks.validation.validate import (
    ValidationContext,
    needs_servers,
    problems,
    warnings,
)

__all__ = ["ValidationContext", "needs_servers", "problems", "warnings"]
