"""The one error a parser raises, with messages a person can act on."""

from __future__ import annotations

from pydantic import ValidationError

_MAX_SHOWN_ERRORS = 5
_MAX_INPUT_CHARS = 60


class InvalidResource(ValueError):
    """A manifest Weft cannot accept; `message` says where and why."""

    def __init__(self, kind: str, name: str, message: str) -> None:
        super().__init__(f"{kind} {name}: {message}")
        self.kind = kind
        self.name = name
        self.message = message


def field_path(prefix: str, location: tuple[str | int, ...]) -> str:
    """`spec` + ("backends", 1, "weight") -> `spec.backends[1].weight`."""
    path = prefix
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else part
    return path or "(root)"


def describe_validation_error(error: ValidationError, prefix: str) -> str:
    """One line per problem, each naming the field as the manifest spells it."""
    problems = [_describe(detail, prefix) for detail in error.errors(include_url=False)]
    shown = problems[:_MAX_SHOWN_ERRORS]
    if len(problems) > len(shown):
        shown.append(f"and {len(problems) - len(shown)} more")
    return "; ".join(shown)


def _describe(detail: object, prefix: str) -> str:
    assert isinstance(detail, dict)
    path = field_path(prefix, tuple(detail["loc"]))
    kind: str = detail["type"]
    if kind == "missing":
        return f"{path}: is required"
    if kind == "value_error":
        # Our validators raise ValueError with a complete sentence naming the value.
        return f"{path}: {detail['ctx']['error']}"
    message: str = detail["msg"]
    return f"{path}: {message[0].lower()}{message[1:]}, got {_shorten(detail.get('input'))}"


def _shorten(value: object) -> str:
    text = repr(value)
    if len(text) <= _MAX_INPUT_CHARS:
        return text
    return text[: _MAX_INPUT_CHARS - 3] + "..."
