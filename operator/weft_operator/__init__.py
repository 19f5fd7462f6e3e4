"""The Weft operator: kopf handlers, indexes, catalog, config and identity servers."""
