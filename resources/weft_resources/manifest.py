"""Reading one manifest: its apiVersion, its metadata, then parts of its body."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from weft_resources.base import ObjectMeta, Resource
from weft_resources.errors import InvalidResource, describe_validation_error

Model = TypeVar("Model", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Manifest:
    """A manifest whose apiVersion is served and whose metadata is valid."""

    kind: str
    version: str
    meta: ObjectMeta
    body: Mapping[str, Any]

    @classmethod
    def read(cls, body: Mapping[str, Any], resource: type[Resource]) -> Manifest:
        kind = resource.KIND.value
        raw_meta = body.get("metadata")
        name = _display_name(raw_meta)
        group, _, version = str(body.get("apiVersion", "")).rpartition("/")
        if group != resource.API_GROUP or version not in resource.SERVED_VERSIONS:
            served = ", ".join(
                f"{resource.API_GROUP}/{v}" if resource.API_GROUP else v
                for v in resource.SERVED_VERSIONS
            )
            raise InvalidResource(
                kind, name, f"apiVersion: {body.get('apiVersion')!r} is not served; use {served}"
            )
        try:
            meta = ObjectMeta.model_validate(raw_meta if raw_meta is not None else {})
        except ValidationError as error:
            raise InvalidResource(
                kind, name, describe_validation_error(error, "metadata")
            ) from None
        return cls(kind=kind, version=version, meta=meta, body=body)

    @property
    def display_name(self) -> str:
        return f"{self.meta.namespace}/{self.meta.name}" if self.meta.namespace else self.meta.name

    def part(
        self, model: type[Model], at: str = "spec", context: Mapping[str, Any] | None = None
    ) -> Model:
        """Validate the body's field `at` (or the whole body when `at` is "") as `model`."""
        data = self.body if not at else self.body.get(at)
        try:
            return model.model_validate(data if data is not None else {}, context=context)
        except ValidationError as error:
            raise self.invalid(describe_validation_error(error, at)) from None

    def invalid(self, message: str) -> InvalidResource:
        return InvalidResource(self.kind, self.display_name, message)


def _display_name(raw_meta: Any) -> str:
    if not isinstance(raw_meta, Mapping):
        return "(unnamed)"
    name = raw_meta.get("name") or "(unnamed)"
    namespace = raw_meta.get("namespace")
    return f"{namespace}/{name}" if namespace else str(name)
