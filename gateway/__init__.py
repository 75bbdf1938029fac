"""The HTTP side of modelgate: config, routes, auth, routing table and pool dispatch."""

__version__ = "0.1.0"
