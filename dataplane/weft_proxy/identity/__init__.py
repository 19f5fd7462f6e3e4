"""The proxy's workload identity: an in-memory key, a CSR, a leaf renewed before expiry."""
