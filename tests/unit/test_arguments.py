"""Arguments are checked against the function's signature before the call."""

import pytest

from workers.arguments import ArgumentCheck
from workers.errors import BadArguments


def plain(a, b): ...
def defaults(a, b=2): ...
def varargs(*values): ...
def varkw(a, **rest): ...
def kwonly(a, *, scale): ...
def posonly(a, /, b): ...


@pytest.mark.parametrize("fn, args", [
    (plain, [1, 2]), (defaults, [1]), (defaults, [1, 2]), (varargs, []), (varargs, [1, 2, 3]),
])
def test_positional_calls_that_fit(fn, args):
    ArgumentCheck(fn, fn.__name__).check_positional(args)


@pytest.mark.parametrize("fn, kwargs", [
    (plain, {"a": 1, "b": 2}), (defaults, {"a": 1}), (varkw, {"a": 1, "x": 2, "y": 3}),
    (kwonly, {"a": 1, "scale": 2}), (plain, {"b": 1, "a": 2}),
])
def test_named_calls_that_fit(fn, kwargs):
    ArgumentCheck(fn, fn.__name__).check_named(kwargs)


@pytest.mark.parametrize("fn, args, words", [
    (plain, [1], "missing required argument(s) b"),
    (plain, [1, 2, 3], "takes at most 2 positional argument(s), got 3"),
    (kwonly, [1], "missing required argument(s) scale"),
])
def test_positional_calls_that_do_not_fit_name_the_signature(fn, args, words):
    with pytest.raises(BadArguments) as error:
        ArgumentCheck(fn, fn.__name__).check_positional(args)
    assert words in str(error.value)
    assert f"{fn.__name__}(" in str(error.value)


@pytest.mark.parametrize("fn, kwargs, words", [
    (plain, {"a": 1, "c": 2}, "has no argument(s) named c"),
    (plain, {"a": 1}, "missing required argument(s) b"),
    (varargs, {"x": 1}, "has no argument(s) named x"),
    (posonly, {"a": 1, "b": 2}, "has no argument(s) named a"),
    (posonly, {"b": 2}, "positional-only"),
])
def test_named_calls_that_do_not_fit_name_the_signature(fn, kwargs, words):
    with pytest.raises(BadArguments) as error:
        ArgumentCheck(fn, fn.__name__).check_named(kwargs)
    assert words in str(error.value)


def test_builtins_without_a_signature_are_left_to_the_call():
    check = ArgumentCheck(max, "max")
    check.check_positional([1, 2, 3])
    check.check_named({"anything": 1})
