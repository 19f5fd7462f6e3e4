"""The proxy's side of config discovery: a gRPC client that keeps the proxy's config.

`assembler` (sans-IO) applies updates whole or not at all; `store` holds the newest
accepted snapshot for the proxy's stacks to read and watch; `backoff` spaces out
reconnections; `client` runs the stream.
"""
