"""The process side of modelgate: pool supervisors, worker loops and language runners.

It never imports the gateway, and the gateway imports nothing from here but :mod:`workers.wire`,
the protocol both sides speak; the one exception is ``modelgate worker``
(:mod:`gateway.cli.worker`), which runs a supervisor in its own process. The layers, top to
bottom: supervisor, worker, batching, calls and connection, runners, then errors and wire
(``[tool.importlinter]`` in pyproject.toml).
"""
