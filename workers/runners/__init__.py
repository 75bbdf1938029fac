"""The language runners (:mod:`.python`, :mod:`.r`) and what the worker loop sees of them:
:class:`Runner`, made by :func:`load_runner` for a version's language."""

from __future__ import annotations

from typing import Any, Protocol

from workers.wire import PoolSpec


class Runner(Protocol):
    """A script loaded once, whose function is called per request.

    Its life straddles the fork (see :class:`workers.supervisor.Supervisor`):

    * **Loading** (:func:`load_runner`) runs the user's script. With ``preload`` (the default)
      that happens in the supervisor, before the fork, and every worker inherits the loaded
      function and shares its memory copy-on-write; so loading must leave nothing a fork
      breaks (no thread, socket or open connection of ours), and what each process must have
      of its own is redone after the fork (the R runner reseeds R's random numbers in each
      child). With ``preload: false`` each worker loads it after the fork instead.
    * **Calls** happen only after the fork, in a worker, one at a time on its main thread.

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
        from workers.runners.python import PythonRunner

        return PythonRunner(spec.script, spec.function, spec.workdir)
    from workers.runners.r import RRunner

    return RRunner(spec.script, spec.function, spec.workdir, spec.r_libs)
