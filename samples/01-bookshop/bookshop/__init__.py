"""Bookshop: a web front calling books over HTTP/1.1 and ratings over gRPC."""
