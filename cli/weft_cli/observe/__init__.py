"""Reading the mesh's traffic: the proxies' metrics (scraped, or from Prometheus) and
their live tap, aggregated by pure modules the commands share."""
