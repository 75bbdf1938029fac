"""Runs an R script once (embedded R through rpy2) and calls one of its functions per request.

**Before or after the fork.** R is started and the script sourced in the supervisor, before
the fork (the default ``preload``), as for Python. Measured on the wine model (R 4.2.2,
randomForest, 2 workers; PSS from /proc/PID/smaps_rollup, parent + workers, after 50
calls): 155 MB with preload against 179 MB without, and both pools ready in ~0.75 s. The saving
is smaller than for Python because R's garbage collector writes mark bits into every object it
visits, which unshares those pages; the larger gain is that a replacement worker is a fork of a
warm parent, serving at once, instead of a new R start and model load (~0.7 s) after a crash.
R is single-threaded and keeps working after ``fork`` (``parallel::mcparallel`` relies on the
same); each worker then has its own copy of R's state. What a fork would share that must not be
shared is handled here: the R random number stream is reseeded in each child when the script
had seeded it (as ``parallel`` and Python's ``random`` do), and only the supervisor, which exits
last, runs R's exit code (workers leave with ``os._exit``), so the session's temporary directory
is not removed under the others.

**Calls.** A call is built and evaluated on R's C API (``R_tryEval``), values converted by
:mod:`workers.runners.r_convert` without rpy2's per-object wrappers. The function is called
through a small R closure, ``withCallingHandlers(f(...), error =, warning =)``, the cheapest way to
see R's errors and warnings (``tryCatch`` costs twice as much; R's global handlers are not active
under ``R_tryEval``): an error is recorded with its call stack and then reaches the top level,
so ``R_tryEval`` reports it, and the runner raises :class:`ModelFailure` with the condition's
class and message (the stack goes to the log); a warning is logged and muffled, never fatal.

**Start-up.** R runs non-interactive (``interactive()`` is FALSE, as under ``Rscript``) and with
its C stack check on: rpy2 disables that check by default, and a runaway recursion then kills
the worker with SIGSEGV instead of failing the call with "C stack usage is too close to the
limit". rpy2 also sets ``LD_LIBRARY_PATH`` for R (too late for this process, which is already
linked) and takes SIGINT over; both are put back, or every subprocess of a model (and of a test
process that embedded R) would load the system's libraries ahead of its own.
"""

from __future__ import annotations

import atexit
import gc
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog

from workers.errors import BadArguments, LoadError, ModelFailure

log = structlog.get_logger("modelgate.worker")

_encode = msgspec.json.Encoder().encode

# Evaluated once per process. `on_warning` logs through a Python callback given at start-up.
_HARNESS = r"""
function(log_warning) {
  state <- new.env()
  one_line <- function(call)
    if (is.null(call)) "" else paste(deparse(call, nlines = 1L), collapse = "")
  on_error <- function(e) { state$error <- e; state$calls <- sys.calls() }
  on_warning <- function(w) {
    log_warning(conditionMessage(w), one_line(conditionCall(w)))
    if (getOption("warn", 0) < 2) tryInvokeRestart("muffleWarning")
  }
  list(
    caller = function(f, name) {
      env <- new.env(parent = environment(on_error))
      assign(name, f, envir = env)
      caller <- function(...) NULL
      body(caller) <- substitute(
        withCallingHandlers(F(...), error = on_error, warning = on_warning),
        list(F = as.name(name)))
      environment(caller) <- env
      caller
    },
    source = function(path) {
      withCallingHandlers(source(path), error = on_error, warning = on_warning)
      NULL
    },
    last_error = function() {
      e <- state$error
      calls <- state$calls
      state$error <- NULL
      state$calls <- NULL
      if (is.null(e))
        return(list(class = "error", message = trimws(geterrmessage()), call = "", stack = NULL))
      stack <- vapply(calls, one_line, "")
      stack <- stack[-length(stack)]  # the handler itself
      stack <- stack[!startsWith(stack, ".handleSimpleError(")]
      list(class = class(e)[[1L]], message = conditionMessage(e),
           call = one_line(conditionCall(e)), stack = as.character(stack))
    },
    signature = function(f) {
      fs <- formals(args(f))
      if (is.null(fs) && !is.function(args(f))) return(NULL)  # a special such as `if`
      names <- as.character(names(fs))
      code <- if (is.primitive(f)) "" else deparse(body(f))
      tested <- vapply(names, function(n)
        any(grepl(paste0("missing(", n, ")"), code, fixed = TRUE)), TRUE)
      no_default <- vapply(seq_along(fs), function(i) identical(fs[[i]], quote(expr = )), TRUE)
      list(names = names, required = as.logical(no_default & !tested))
    },
    reseed = function() if (exists(".Random.seed", globalenv(), inherits = FALSE)) set.seed(NULL)
  )
}
"""

_harness: dict[str, Any] = {}
_start_lock = threading.Lock()


def start_r() -> dict[str, Any]:
    """Start the embedded R once per process; return the harness functions."""
    with _start_lock:
        if not _harness:
            _harness.update(_start())
        return _harness


def _start() -> dict[str, Any]:
    import rpy2.rinterface_lib.callbacks as callbacks
    import rpy2.rinterface_lib.embedded as embedded

    from workers.runners import r_convert

    library_path = os.environ.get("LD_LIBRARY_PATH")
    in_main_thread = threading.current_thread() is threading.main_thread()
    sigint = signal.getsignal(signal.SIGINT) if in_main_thread else None
    callbacks.consolewrite_print = _ConsoleLog("stdout")
    callbacks.consolewrite_warnerror = _ConsoleLog("stderr")
    # initr_simple() reads these (rpy2 3.5); the keyword form, initr_checkenv(), would also
    # run an Rscript subprocess to copy R's environment variables into this one.
    embedded._DEFAULT_R_INTERACTIVE = False
    embedded._DEFAULT_C_STACK_LIMIT = 0  # 0: keep the limit R computed itself
    import rpy2.rinterface as ri

    ri.initr_simple()
    if library_path is None:
        os.environ.pop("LD_LIBRARY_PATH", None)
    else:
        os.environ["LD_LIBRARY_PATH"] = library_path
    if in_main_thread and sigint is not None:
        signal.signal(signal.SIGINT, sigint)
    r_convert.bind()
    evaluate = ri.baseenv["eval"]
    parse = ri.baseenv["parse"]
    evaluate(parse(text=ri.StrSexpVector(["options(show.error.messages = FALSE)"])))
    log_warning = ri.rternalize(_log_warning)
    harness = evaluate(parse(text=ri.StrSexpVector([_HARNESS])))(log_warning)
    functions = dict(zip(harness.names, harness, strict=True))
    functions["ri"] = ri
    functions["log_warning"] = log_warning  # R holds only a handle: keep the Python side alive
    os.register_at_fork(after_in_child=_reseed_after_fork)
    atexit.register(_release_at_exit)
    return functions


def _release_at_exit() -> None:
    """Free the Python handles on R objects while rpy2 is still whole: freed later, during the
    interpreter's teardown, each one's finalizer finds rpy2's module emptied and prints a
    traceback (seen on every Ctrl-C of a gateway serving an R model)."""
    _harness.clear()
    gc.collect()


def _log_warning(message: Any, call: Any) -> Any:
    log.warning("r_warning", message=str(message[0]), call=str(call[0]))
    import rpy2.rinterface as ri

    return ri.NULL


def _reseed_after_fork() -> None:
    if _harness:
        _harness["reseed"]()


class _ConsoleLog:
    """R's console output (``print``, ``cat``, ``message``) as log lines, one per line."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.pending = ""

    def __call__(self, text: str) -> None:
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            log.info("r_output", stream=self.stream, text=line)


@dataclass(frozen=True)
class Signature:
    """What a call must agree with, from ``formals()`` read once at load."""

    shown: str
    names: tuple[str, ...]  # without "..."
    before_dots: tuple[str, ...]  # the formals a positional argument can fill
    required: frozenset[str]  # no default, and not tested with missing()
    dots: bool
    checked: bool = True

    def check(self, args: list[Any] | None, kwargs: dict[str, Any] | None) -> None:
        if not self.checked:
            return
        if kwargs is not None:
            unknown = sorted(set(kwargs) - set(self.names))
            if unknown and not self.dots:
                self._fail(f"has no argument(s) named {', '.join(unknown)}")
            filled = set(kwargs)
        else:
            count = len(args or ())
            if count > len(self.before_dots) and not self.dots:
                self._fail(f"takes at most {len(self.before_dots)} argument(s), got {count}")
            filled = set(self.before_dots[:count])
        missing = [n for n in self.names if n in self.required and n not in filled]
        if missing:
            self._fail(f"is missing required argument(s) {', '.join(missing)}")

    def _fail(self, what: str) -> None:
        raise BadArguments(
            f"{self.shown} {what}. Send {{\"data\": {{name: value, ...}}}} for named "
            f"arguments or {{\"parameters\": [value, ...]}} for positional ones.")


def _signature(name: str, described: Any, ri: Any) -> Signature:
    if described.typeof == ri.RTYPES.NILSXP:
        return Signature(f"{name}()", (), (), frozenset(), dots=True, checked=False)
    names = [str(n) for n in described[0]]
    required = {n for n, r in zip(names, described[1], strict=True) if r and n != "..."}
    dots = "..." in names
    return Signature(
        shown=f"{name}({', '.join(names)})",
        names=tuple(n for n in names if n != "..."),
        before_dots=tuple(names[:names.index("...")] if dots else names),
        required=frozenset(required), dots=dots)


class RRunner:
    """A sourced R script and one of its functions."""

    def __init__(self, script: str, function: str, workdir: str = "",
                 r_libs: list[str] | None = None) -> None:
        """``workdir``: the working directory while sourcing and calling (the version's
        snapshot); "": the script's directory. ``r_libs``: library directories searched
        before R's own (the version's environment)."""
        from workers.runners.r_convert import r_class

        harness = start_r()
        ri = harness["ri"]
        os.chdir(workdir or os.path.dirname(script))
        if r_libs:
            lib_paths = ri.baseenv[".libPaths"]
            lib_paths(ri.StrSexpVector([*r_libs, *lib_paths()]))
        if _evaluate(harness["source"], [script], {}) is None:
            failure = _last_error(harness)
            raise LoadError(f"sourcing {script} failed: {failure['message']}")
        try:
            fn = ri.globalenv[function]  # the global frame only: what the script defined
        except KeyError:
            raise LoadError(f"{script} does not define {function}()") from None
        if fn.typeof not in (ri.RTYPES.CLOSXP, ri.RTYPES.BUILTINSXP, ri.RTYPES.SPECIALSXP):
            kind = r_class(fn.__sexp__._cdata)
            raise LoadError(f"{function} in {script} is a {kind}, not a function")
        self.signature = _signature(function, harness["signature"](fn), ri)
        self._harness = harness
        self._caller = harness["caller"](fn, ri.StrSexpVector([function]))  # kept alive here
        self._caller_sexp = self._caller.__sexp__._cdata

    def call(self, args: list[Any] | None, kwargs: dict[str, Any] | None) -> tuple[bytes, float]:
        """See :class:`workers.runners.Runner`."""
        from workers.runners.r_convert import from_r

        self.signature.check(args, kwargs)
        result, model_ms = self._call(args or [], kwargs or {}, from_r)
        return _encode(result), model_ms

    def call_batch(self, args: list[list[Any]] | None, kwargs: list[dict[str, Any]] | None
                   ) -> tuple[list[bytes], float]:
        """See :meth:`workers.runners.Runner.call_batch`: each argument becomes the R vector
        (or list) of its values across the batch; the function returns one result per input
        (a vector, a list, or a data frame with one row per input)."""
        from workers.runners.r_convert import from_r_elements

        if kwargs is not None:
            self.signature.check(None, kwargs[0])
            count = len(kwargs)
            columns = {name: [one[name] for one in kwargs] for name in kwargs[0]}
            results, model_ms = self._call([], columns, from_r_elements)
        else:
            assert args is not None
            self.signature.check(args[0], None)
            count = len(args)
            results, model_ms = self._call([list(c) for c in zip(*args)], {}, from_r_elements)
        if len(results) != count:
            raise ModelFailure(f"a batched function must return one result per input: it got "
                               f"{count} inputs and returned {len(results)}")
        return [_encode(result) for result in results], model_ms

    def _call(self, args: list[Any], kwargs: dict[str, Any], convert: Any) -> tuple[Any, float]:
        from workers.runners.r_convert import RUnconvertible, lib

        try:
            value, model_ms = _evaluate_sexp(self._caller_sexp, args, kwargs)
        except RUnconvertible as exc:
            raise BadArguments(str(exc)) from None
        if value is None:
            failure = _last_error(self._harness)
            log.error("model_error", r_class=failure["class"], r_error=failure["message"],
                      r_call=failure["call"], r_stack=failure["stack"])
            raise ModelFailure(f"{failure['class']}: {failure['message']}", model_ms)
        try:
            return convert(value), model_ms
        except RUnconvertible as exc:
            raise ModelFailure(f"the function returned {exc}, which cannot be converted "
                               "to JSON") from None
        finally:
            lib.Rf_unprotect(1)


def _evaluate_sexp(function: Any, args: list[Any], kwargs: dict[str, Any]
                   ) -> tuple[Any, float]:
    """Evaluate ``function(*args, **kwargs)`` in R's global environment.

    Returns the result *protected* (the caller unprotects it), or None when R raised an error,
    and the milliseconds R spent evaluating.
    """
    from workers.runners.r_convert import ffi, lib, symbol, to_r

    arguments = lib.Rf_protect(lib.Rf_allocList(len(args) + len(kwargs)))
    try:
        cell = arguments
        for value in args:
            lib.SETCAR(cell, to_r(value))
            cell = lib.CDR(cell)
        for name, value in kwargs.items():
            lib.SET_TAG(cell, symbol(name))
            lib.SETCAR(cell, to_r(value))
            cell = lib.CDR(cell)
        call = lib.Rf_protect(lib.Rf_lang1(function))
        lib.SETCDR(call, arguments)
        failed = ffi.new("int *")
        started = time.perf_counter()
        result = lib.R_tryEval(call, lib.R_GlobalEnv, failed)
        model_ms = (time.perf_counter() - started) * 1000.0
        lib.Rf_unprotect(1)
    finally:
        lib.Rf_unprotect(1)
    if failed[0]:
        return None, model_ms
    return lib.Rf_protect(result), model_ms


def _evaluate(function: Any, args: list[Any], kwargs: dict[str, Any]) -> bool | None:
    """``function(...)`` for an rpy2 function, at load: True if it ran, None if R failed."""
    from workers.runners.r_convert import lib

    value, _ = _evaluate_sexp(function.__sexp__._cdata, args, kwargs)
    if value is None:
        return None
    lib.Rf_unprotect(1)
    return True


def _last_error(harness: dict[str, Any]) -> dict[str, Any]:
    from workers.runners.r_convert import from_r

    described = harness["last_error"]()
    return from_r(described.__sexp__._cdata)  # type: ignore[no-any-return]
