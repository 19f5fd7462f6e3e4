"""Run the shipped Argo CD health check (docs/gitops/argocd-health) as Argo CD runs it.

Argo CD evaluates a health script in a Lua VM with the object, decoded from JSON, as the
global `obj` (JSON arrays become 1-based tables) and reads `status` and `message` from
the table it returns. lupa embeds a real Lua runtime, so the script the user pastes
into argocd-cm is the script the tests run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lupa

HEALTH_DIR = Path(__file__).resolve().parents[2] / "docs" / "gitops" / "argocd-health"
SCRIPT = HEALTH_DIR / "health.lua"
SNIPPET = HEALTH_DIR / "argocd-cm.yaml"


@dataclass(frozen=True)
class Health:
    status: str  # Healthy, Progressing, Degraded (Argo CD's names)
    message: str


def _to_lua(lua: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return lua.table_from({k: _to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([_to_lua(lua, v) for v in value])
    return value


def health(obj: dict[str, Any], script: str | None = None) -> Health:
    """What Argo CD shows for `obj` (a Kubernetes object as the API server returns it)."""
    lua = lupa.LuaRuntime(register_eval=False)
    lua.globals().obj = _to_lua(lua, obj)
    result = lua.execute(script if script is not None else SCRIPT.read_text())
    return Health(status=str(result["status"]), message=str(result["message"] or ""))
