"""Runs a Python script once and calls one of its functions per request."""

from __future__ import annotations

import os
import runpy
import sys
import time
import traceback
from typing import Any

import structlog

from workers.arguments import ArgumentCheck
from workers.convert import Unconvertible, encode_result
from workers.errors import LoadError, ModelFailure

log = structlog.get_logger("modelgate.worker")


class PythonRunner:
    """A loaded function: the script's globals stay alive for the life of the process."""

    def __init__(self, script: str, function: str) -> None:
        directory = os.path.dirname(script)
        os.chdir(directory)
        if directory not in sys.path:
            sys.path.insert(0, directory)
        try:
            namespace = runpy.run_path(script, run_name="__modelgate__")
        except BaseException as exc:  # the user's script: anything can happen
            detail = "".join(traceback.format_exception(exc)[-6:])
            raise LoadError(f"running {script} failed: {type(exc).__name__}: {exc}\n{detail}")
        fn = namespace.get(function)
        if fn is None:
            raise LoadError(f"{script} does not define {function}()")
        if not callable(fn):
            raise LoadError(f"{function} in {script} is a {type(fn).__name__}, not a function")
        self._fn = fn
        self._check = ArgumentCheck(fn, function)
        self._globals = namespace  # keeps the module's objects alive

    def call(self, args: list[Any] | None, kwargs: dict[str, Any] | None) -> tuple[bytes, float]:
        """Call the function; return its JSON-encoded result and the ms spent inside it."""
        if kwargs is not None:
            self._check.check_named(kwargs)
            args = []
        else:
            self._check.check_positional(args or [])
            kwargs = {}
        start = time.perf_counter()
        try:
            result = self._fn(*args, **kwargs)  # type: ignore[misc]
        except (Exception, SystemExit) as exc:
            log.error("model_error", exc_info=exc)
            raise ModelFailure(f"{type(exc).__name__}: {exc}") from None
        model_ms = (time.perf_counter() - start) * 1000.0
        try:
            return encode_result(result), model_ms
        except Unconvertible as exc:
            raise ModelFailure(
                f"the function returned a value that cannot be converted to JSON: {exc}"
            ) from None
