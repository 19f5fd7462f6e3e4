"""The inbound stack: callers of this pod, authorized, then forwarded to the application."""
