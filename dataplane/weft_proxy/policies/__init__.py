"""The proxy's pure decisions: route, classify, split, balance, retry, eject, authorize, time out.

Nothing here does I/O or reads the time itself (an import contract keeps asyncio, socket,
ssl, uvloop, grpc and time out): whatever depends on time takes a `Clock`, whatever is
random takes a `random.Random`, so tests drive both. Config objects are compiled once
(regexes, networks, weights) into the objects here, which the stacks rebuild when a new
config snapshot arrives; per-request calls then only evaluate.
"""
