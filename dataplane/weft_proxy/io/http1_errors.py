"""How an HTTP/1 exchange ends early: the client or the upstream went away, or the
upstream broke the protocol. A module of its own because the modules that raise them are
compiled (docs/architecture.md, "Compiled modules"), and mypyc cannot compile a subclass
of ConnectionError."""

from __future__ import annotations


class ClientGone(ConnectionError):
    """The client went away in the middle of its request: no fault of an upstream's."""


class UpstreamClosed(ConnectionError):
    """The upstream closed the connection (a FIN: what ends a close-delimited body)."""


class MalformedResponse(ConnectionError):
    """The upstream broke HTTP/1: its connection is spent, and the client gets a 502."""
