"""A real Kubernetes control plane on one machine, built from Go modules."""
