"""Live tap: request events published by the stacks, streamed to watchers over gRPC."""
