"""The webhooks' I/O: the HTTPS server, its certificates, and the Kubernetes API."""
