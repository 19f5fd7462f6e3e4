"""Weft's viz: the dashboard (a small aiohttp app), the Prometheus scrape configuration
of the proxies, and `weft viz install`'s manifests. docs/dashboard.md."""
