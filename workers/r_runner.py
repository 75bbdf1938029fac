"""Runs an R script once (embedded R through rpy2) and calls one of its functions per request.

R is initialised and the script sourced in the pool parent, before the fork (with the default
``preload``), as for Python. Measured here: starting R and loading randomForest takes ~660 ms a
process, and two forked workers each have a PSS of 18 MB against 52 MB RSS, so pre-forking both
starts workers (and replacements) at once and shares two thirds of their memory. R is
single-threaded and fork-safe for this use (``parallel::mcparallel`` relies on the same); each
worker has its own copy of R's state after the fork.

The lowest rpy2 layer (``rinterface``) is used: values are converted directly (see
:mod:`workers.r_convert`), and the function is called through a one-line R wrapper that turns
``stop()`` into its message (a ~3 us cost over a bare call). With ``options(warn = 1)`` R
prints warnings as they happen, and the console callback logs them: never fatal.
"""

from __future__ import annotations

import os
import time
from typing import Any

import msgspec
import structlog

from workers.errors import BadArguments, LoadError, ModelFailure

log = structlog.get_logger("modelgate.worker")

_WRAPPER = """
function(f, ...) tryCatch(list(TRUE, f(...)), error = function(e) list(FALSE, conditionMessage(e)))
"""

_SOURCE = """
function(path) tryCatch({ source(path, chdir = TRUE); "" },
                        error = function(e) conditionMessage(e))
"""

_FORMALS = """
function(f) {
  fs <- formals(f)
  list(names(fs), vapply(fs, function(x) is.symbol(x) && identical(as.character(x), ""), TRUE))
}
"""

_encode = msgspec.json.Encoder().encode


def _start_r() -> Any:
    import rpy2.rinterface as ri
    import rpy2.rinterface_lib.callbacks as callbacks

    callbacks.consolewrite_print = lambda text: log.info("r_output", text=text.rstrip())
    callbacks.consolewrite_warnerror = lambda text: log.warning("r_warning", text=text.rstrip())
    ri.initr_simple()
    ri.baseenv["options"](warn=ri.IntSexpVector([1]))  # print warnings when they happen
    return ri


class RRunner:
    """A sourced R script and one of its functions."""

    def __init__(self, script: str, function: str) -> None:
        self._ri = ri = _start_r()
        os.chdir(os.path.dirname(script))
        evaluate = ri.baseenv["eval"]
        parse = ri.baseenv["parse"]

        def r_function(code: str) -> Any:
            return evaluate(parse(text=ri.StrSexpVector([code])))

        failure = r_function(_SOURCE)(ri.StrSexpVector([script]))[0]
        if failure:
            raise LoadError(f"sourcing {script} failed: {failure}")
        try:
            fn = ri.globalenv.find(function)
        except KeyError:
            raise LoadError(f"{script} does not define {function}()") from None
        if fn.typeof not in (ri.RTYPES.CLOSXP, ri.RTYPES.BUILTINSXP, ri.RTYPES.SPECIALSXP):
            raise LoadError(f"{function} in {script} is not a function")
        self._fn = fn
        self._call = r_function(_WRAPPER)
        self._describe(function, r_function(_FORMALS)(fn) if fn.typeof == ri.RTYPES.CLOSXP
                       else None)

    def _describe(self, name: str, formals: Any) -> None:
        """What calls must agree with, from ``formals()``, read once."""
        if formals is None or formals[0] is self._ri.NULL:
            names: list[str] = []
            required: list[bool] = []
        else:
            names = [str(n) for n in formals[0]]
            required = [bool(r) for r in formals[1]]
        self._dots = "..." in names
        self._names = [n for n in names if n != "..."]
        self._required = [n for n, r in zip(names, required) if r and n != "..."]
        self._shown = f"{name}({', '.join(names)})"

    def _check(self, args: list[Any] | None, kwargs: dict[str, Any] | None) -> None:
        if self._dots:
            return
        if kwargs is not None:
            unknown = sorted(set(kwargs) - set(self._names))
            if unknown:
                self._fail(f"has no argument(s) named {', '.join(unknown)}")
            missing = [n for n in self._required if n not in kwargs]
        else:
            count = len(args or [])
            if count > len(self._names):
                self._fail(f"takes at most {len(self._names)} argument(s), got {count}")
            missing = [n for n in self._required if n not in self._names[:count]]
        if missing:
            self._fail(f"is missing required argument(s) {', '.join(missing)}")

    def _fail(self, what: str) -> None:
        raise BadArguments(
            f"{self._shown} {what}. Send {{\"data\": {{name: value, ...}}}} for named "
            f"arguments or {{\"parameters\": [value, ...]}} for positional ones.")

    def _invoke(self, arguments: tuple[list[Any], dict[str, Any]]) -> tuple[Any, float]:
        positional, named = arguments
        start = time.perf_counter()
        outcome = self._call(self._fn, *positional, **named)
        model_ms = (time.perf_counter() - start) * 1000.0
        if not outcome[0][0]:
            message = str(outcome[1][0])
            log.error("model_error", r_error=message)
            raise ModelFailure(f"R error: {message}")
        return outcome[1], model_ms

    def _arguments(self, args: list[Any] | None, kwargs: dict[str, Any] | None
                   ) -> tuple[list[Any], dict[str, Any]]:
        from workers.r_convert import RUnconvertible, to_r

        try:
            if kwargs is not None:
                return [], {name: to_r(value) for name, value in kwargs.items()}
            return [to_r(a) for a in args or []], {}
        except RUnconvertible as exc:
            raise BadArguments(str(exc)) from None

    def call(self, args: list[Any] | None, kwargs: dict[str, Any] | None) -> tuple[bytes, float]:
        """See :class:`workers.runners.Runner`."""
        from workers.r_convert import RUnconvertible, from_r

        self._check(args, kwargs)
        value, model_ms = self._invoke(self._arguments(args, kwargs))
        try:
            return _encode(from_r(value)), model_ms
        except RUnconvertible as exc:
            raise ModelFailure(f"the function returned {exc}, which cannot be converted "
                               "to JSON") from None

    def call_batch(self, args: list[list[Any]] | None, kwargs: list[dict[str, Any]] | None
                   ) -> tuple[list[bytes], float]:
        """See :meth:`workers.runners.Runner.call_batch`: each argument becomes the R vector
        (or list) of its values across the batch; the function returns one result per input."""
        from workers.r_convert import RUnconvertible, from_r

        if kwargs is not None:
            self._check(None, kwargs[0])
            count = len(kwargs)
            columns: Any = {name: [one[name] for one in kwargs] for name in kwargs[0]}
            arguments = self._arguments(None, columns)
        else:
            assert args is not None
            self._check(args[0], None)
            count = len(args)
            arguments = self._arguments([list(column) for column in zip(*args)], None)
        value, model_ms = self._invoke(arguments)
        try:
            results = from_r(value)
        except RUnconvertible as exc:
            raise ModelFailure(f"the function returned {exc}") from None
        if count == 1 and not isinstance(results, list):
            results = [results]
        if not isinstance(results, list) or len(results) != count:
            got = f"{len(results)} results" if isinstance(results, list) else "one value"
            raise ModelFailure(f"a batched function must return one result per input: it got "
                               f"{count} inputs and returned {got}")
        return [_encode(result) for result in results], model_ms
