"""Checks a call's arguments against a Python function's signature *before* calling it.

Calling first and catching ``TypeError`` would blame the client for a bug inside the function,
so the signature is read once at load time and every call is checked against it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from workers.errors import BadArguments

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class ArgumentCheck:
    """The facts about a signature that a call must agree with, computed once."""

    def __init__(self, fn: Callable[..., Any], name: str) -> None:
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):  # builtins without a signature: let the call decide
            self.unchecked = True
            return
        self.unchecked = False
        params = list(sig.parameters.values())
        # names only: a default value (an API key, a path) is nobody's business
        bare = [p.replace(default=p.empty, annotation=p.empty) for p in params]
        self.shown = f"{name}{sig.replace(parameters=bare, return_annotation=sig.empty)}"
        positional = [p for p in params if p.kind in _POSITIONAL]
        self.positional = [p.name for p in positional]
        self.required_positional = [p.name for p in positional if p.default is p.empty]
        self.varargs = any(p.kind is p.VAR_POSITIONAL for p in params)
        self.varkw = any(p.kind is p.VAR_KEYWORD for p in params)
        self.keyword_names = {
            p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }
        self.required_keyword = [
            p.name for p in params if p.kind is p.KEYWORD_ONLY and p.default is p.empty
        ]
        self.positional_only = {p.name for p in params if p.kind is p.POSITIONAL_ONLY}

    def check_positional(self, args: list[Any]) -> None:
        if self.unchecked:
            return
        if len(args) > len(self.positional) and not self.varargs:
            self._fail(f"takes at most {len(self.positional)} positional argument(s), "
                       f"got {len(args)}")
        missing = self.required_positional[len(args):] + self.required_keyword
        if missing:
            self._fail(f"is missing required argument(s) {', '.join(missing)}")

    def check_named(self, kwargs: dict[str, Any]) -> None:
        if self.unchecked:
            return
        if not self.varkw:
            unknown = [k for k in kwargs if k not in self.keyword_names]
            if unknown:
                self._fail(f"has no argument(s) named {', '.join(sorted(unknown))}")
        # A positional-only name given by name is missing even when it is there: with
        # **kwargs it would land in kwargs, and the call would fail inside the function.
        missing = [n for n in self.required_positional + self.required_keyword
                   if n not in kwargs or n in self.positional_only]
        if missing:
            hint = ""
            if any(n in self.positional_only for n in missing):
                hint = ' (positional-only: pass it in "parameters")'
            self._fail(f"is missing required argument(s) {', '.join(missing)}{hint}")

    def _fail(self, what: str) -> None:
        raise BadArguments(
            f"{self.shown} {what}. Send {{\"data\": {{name: value, ...}}}} for named arguments "
            f"or {{\"parameters\": [value, ...]}} for positional ones."
        )

