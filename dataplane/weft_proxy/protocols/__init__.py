"""Sans-IO protocol code for the proxy: bytes in, results out.

Nothing here imports asyncio, socket or ssl, keeps state across calls unless it says so,
or reads a clock; the I/O layer owns sockets, buffers and timeouts.
"""
