"""The Weft data-plane proxy and proxy-init."""
