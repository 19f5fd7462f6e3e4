"""`weft install`: values, the mesh identity, and the rendered manifests."""
