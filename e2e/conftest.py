"""The e2e suite's fixtures live in meshed_bookshop.py and viz_install.py (module names
of their own, so tests import their helpers without clashing with the root conftest)."""

from meshed_bookshop import access, bookshop, control_plane, http
from viz_install import artifacts, viz

__all__ = ["access", "artifacts", "bookshop", "control_plane", "http", "viz"]
