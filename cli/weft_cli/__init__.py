"""The `weft` command line."""
