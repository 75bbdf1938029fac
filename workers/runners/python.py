"""Runs a Python script once and calls one of its functions per request."""

from __future__ import annotations

import os
import runpy
import sys
import time
import traceback
from typing import Any

import structlog

from workers.errors import LoadError, ModelFailure
from workers.runners.arguments import ArgumentCheck
from workers.runners.convert import Unconvertible, encode_result, to_json_value

log = structlog.get_logger("modelgate.worker")


class PythonRunner:
    """A loaded function: the script's globals stay alive for the life of the process."""

    def __init__(self, script: str, function: str, workdir: str = "") -> None:
        """``workdir``: the working directory (the version's snapshot), also importable
        after the script's own directory; "": the script's directory."""
        directory = os.path.dirname(script)
        os.chdir(workdir or directory)
        for path in dict.fromkeys([workdir, directory]):
            if path and path not in sys.path:
                sys.path.insert(0, path)
        try:
            namespace = runpy.run_path(script, run_name="__modelgate__")
        except BaseException as exc:  # the user's script: anything can happen
            raise LoadError(f"running {script} failed: {type(exc).__name__}: {exc}\n"
                            f"{_user_frames(exc)}") from None
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
            raise ModelFailure(f"{type(exc).__name__}: {exc}",
                               (time.perf_counter() - start) * 1000.0) from None
        model_ms = (time.perf_counter() - start) * 1000.0
        return _encoded(result), model_ms

    def call_batch(self, args: list[list[Any]] | None, kwargs: list[dict[str, Any]] | None
                   ) -> tuple[list[bytes], float]:
        """See :meth:`workers.runners.Runner.call_batch`."""
        if kwargs is not None:
            self._check.check_named(kwargs[0])
            count = len(kwargs)
            columns: dict[str, Any] = {name: [one[name] for one in kwargs] for name in kwargs[0]}
            positional: list[Any] = []
        else:
            assert args is not None
            self._check.check_positional(args[0])
            count = len(args)
            positional = [list(column) for column in zip(*args)]
            columns = {}
        start = time.perf_counter()
        try:
            results = self._fn(*positional, **columns)
        except (Exception, SystemExit) as exc:
            log.error("model_error", exc_info=exc)
            raise ModelFailure(f"{type(exc).__name__}: {exc}",
                               (time.perf_counter() - start) * 1000.0) from None
        model_ms = (time.perf_counter() - start) * 1000.0
        if not isinstance(results, (list, tuple)):
            try:
                results = to_json_value(results)  # NumPy arrays, pandas Series, ...
            except Unconvertible:
                pass
        if not isinstance(results, (list, tuple)) or len(results) != count:
            got = f"{len(results)} results" if isinstance(results, (list, tuple)) else (
                f"a {type(results).__name__}")
            raise ModelFailure(f"a batched function must return a list with one result per "
                               f"input: it got {count} inputs and returned {got}")
        return [_encoded(result) for result in results], model_ms


def _encoded(result: Any) -> bytes:
    try:
        return encode_result(result)
    except Unconvertible as exc:
        raise ModelFailure(
            f"the function returned a value that cannot be converted to JSON: {exc}") from None


def _user_frames(exc: BaseException) -> str:
    """The traceback without modelgate's and runpy's own frames: what the user can act on."""
    ours = os.path.dirname(os.path.abspath(__file__))
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith(ours) and not f.filename.startswith("<frozen")]
    return "".join(traceback.format_list(frames[-5:]))
