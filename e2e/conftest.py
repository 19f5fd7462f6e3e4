"""The e2e suite's fixtures live in meshed_bookshop.py (a module name of its own, so
tests import its helpers without clashing with the root conftest)."""

from meshed_bookshop import access, bookshop, control_plane, http

__all__ = ["access", "bookshop", "control_plane", "http"]
