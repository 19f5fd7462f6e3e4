"""The one exception commands raise for the user: `main` prints it as one line."""

from __future__ import annotations


class CliError(Exception):
    """A problem the user can act on, said in one line; the command exits with 1."""
