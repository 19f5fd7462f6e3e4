"""The proxy's socket layer: accepting, peeking for detection, original destinations, splicing."""
