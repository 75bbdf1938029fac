"""Failures a runner reports; the worker loop turns each into a :class:`workers.wire.CallError`."""


class LoadError(Exception):
    """The script could not be run, or it does not define the function: nothing can be served."""


class BadArguments(Exception):
    """The request's arguments do not fit the function's signature (HTTP 400)."""


class ModelFailure(Exception):
    """The user's function raised, or returned something that cannot become JSON (HTTP 500)."""
