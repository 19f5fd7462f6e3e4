"""Shared, IO-free definitions of Weft: config model, identity names, constants."""

__version__ = "0.1.0"
