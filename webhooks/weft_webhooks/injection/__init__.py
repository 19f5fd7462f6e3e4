"""Proxy injection, pure: a pod in, the JSON Patch that adds the proxy out.

The mutating webhook and `weft inject` both call `inject`.
"""

from weft_webhooks.injection.decision import Outcome
from weft_webhooks.injection.injector import Injection, inject
from weft_webhooks.injection.patch import apply_patch
from weft_webhooks.injection.settings import InjectorSettings, Resources

__all__ = ["Injection", "InjectorSettings", "Outcome", "Resources", "apply_patch", "inject"]
