"""Picks the runner for a version's language; the worker loop sees only ``Runner``."""

from __future__ import annotations

from typing import Any, Protocol

from workers.wire import PoolSpec


class Runner(Protocol):
    """A script loaded once, whose function is called per request.

    ``call`` gets positional ``args`` *or* named ``kwargs`` (the other is None) and returns the
    result as JSON bytes plus the milliseconds spent in the user's function. It raises
    :class:`workers.errors.BadArguments` or :class:`workers.errors.ModelFailure`.
    """

    def call(self, args: list[Any] | None, kwargs: dict[str, Any] | None) -> tuple[bytes, float]:
        ...

    def call_batch(self, args: list[list[Any]] | None, kwargs: list[dict[str, Any]] | None
                   ) -> tuple[list[bytes], float]:
        """One call of the function for several inputs of the same shape: each argument
        becomes the list of that argument's values; the function returns one result per
        input (in order), each returned as JSON bytes."""
        ...


def load_runner(spec: PoolSpec) -> Runner:
    """Run the version's script and find its function; raises ``LoadError``."""
    if spec.language == "python":
        from workers.python_runner import PythonRunner

        return PythonRunner(spec.script, spec.function)
    from workers.r_runner import RRunner

    return RRunner(spec.script, spec.function)
