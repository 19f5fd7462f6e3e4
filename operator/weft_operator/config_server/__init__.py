"""The config server: each proxy's configuration, from the catalog, over gRPC (xDS-like).

Pure modules (no gRPC, no asyncio; import-linter checks it): `targets` (what a proxy
subscribes to), `resources` (wire resources with content-hash versions), `cache` (catalog
results and the index reads they depend on), `snapshot` (a proxy's resources, and the
update from one snapshot to another), `session` (one proxy's stream: ACK/NACK, one
update in flight), `protocol` (requests, validated), `hub` (all sessions: changes in,
updates and convergence out).

I/O: `server` (grpc.aio, batching, timeouts, metrics), `reporter` (the `Programmed`
status), `service` (wires them into the operator process).
"""
