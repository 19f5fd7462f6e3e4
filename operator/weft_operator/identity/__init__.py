"""Workload identity: the mesh CA, token review, and the Certify gRPC service."""
