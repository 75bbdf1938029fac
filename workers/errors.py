"""Failures a runner reports; the worker loop turns each into a :class:`workers.wire.CallError`."""


class LoadError(Exception):
    """The script could not be run, or it does not define the function: nothing can be served."""


class BadArguments(Exception):
    """The request's arguments do not fit the function's signature (HTTP 400)."""


class ModelFailure(Exception):
    """The user's function raised, or returned something that cannot become JSON (HTTP 500).
    ``model_ms`` is the time it ran before failing (-1: not known), for the metrics."""

    def __init__(self, message: str, model_ms: float = -1.0) -> None:
        super().__init__(message)
        self.model_ms = model_ms
