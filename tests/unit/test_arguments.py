"""Arguments are checked against the function's signature before the call, so a client's
mistake is a 400 naming the signature, never a TypeError blamed on the function."""

import pytest

from workers.errors import BadArguments
from workers.runners.arguments import ArgumentCheck


def plain(a, b): ...
def defaults(a, b=2): ...
def varargs(*values): ...
def varkw(a, **rest): ...
def kwonly(a, *, scale): ...
def kwonly_default(a, *, scale=1): ...
def posonly(a, /, b): ...
def posonly_default(a=1, /, **rest): ...
def posonly_rest(a, /, **rest): ...
def everything(a, /, b, *more, c, d=4, **rest): ...


SIGNATURES = {
    plain: "plain(a, b)", defaults: "defaults(a, b)", varargs: "varargs(*values)",
    varkw: "varkw(a, **rest)", kwonly: "kwonly(a, *, scale)", posonly: "posonly(a, /, b)",
    posonly_rest: "posonly_rest(a, /, **rest)",
    everything: "everything(a, /, b, *more, c, d, **rest)",
}


def check(fn):
    return ArgumentCheck(fn, fn.__name__)


@pytest.mark.parametrize("fn, args", [
    (plain, [1, 2]), (defaults, [1]), (defaults, [1, 2]), (varargs, []), (varargs, [1, 2, 3]),
    (varkw, [1]), (kwonly_default, [1]), (posonly, [1, 2]), (posonly_default, []),
    (posonly_rest, [{"a": 1}]),
])
def test_positional_calls_that_fit(fn, args):
    check(fn).check_positional(args)
    fn(*args)  # and Python agrees


@pytest.mark.parametrize("fn, kwargs", [
    (plain, {"a": 1, "b": 2}), (plain, {"b": 1, "a": 2}), (defaults, {"a": 1}),
    (defaults, {"a": 1, "b": 3}), (varargs, {}), (varkw, {"a": 1, "x": 2, "y": 3}),
    (varkw, {"a": 1, "rest": 2}), (kwonly, {"a": 1, "scale": 2}), (kwonly_default, {"a": 1}),
    (posonly_default, {"a": 5, "b": 6}),  # `a` goes into **rest; the default fills `a`
])
def test_named_calls_that_fit(fn, kwargs):
    check(fn).check_named(kwargs)
    fn(**kwargs)  # and Python agrees


@pytest.mark.parametrize("fn, args, words", [
    (plain, [1], "is missing required argument(s) b"),
    (plain, [], "is missing required argument(s) a, b"),
    (plain, [1, 2, 3], "takes at most 2 positional argument(s), got 3"),
    (defaults, [1, 2, 3], "takes at most 2 positional argument(s), got 3"),
    (varkw, [1, 2], "takes at most 1 positional argument(s), got 2"),
    (kwonly, [1], "is missing required argument(s) scale"),
    (kwonly, [1, 2], "takes at most 1 positional argument(s), got 2"),
    (posonly, [1], "is missing required argument(s) b"),
    (everything, [1, 2, 3], "is missing required argument(s) c"),
])
def test_positional_calls_that_do_not_fit_name_the_signature(fn, args, words):
    with pytest.raises(BadArguments) as error:
        check(fn).check_positional(args)
    with pytest.raises(TypeError):
        fn(*args)  # Python would have refused it too
    message = str(error.value)
    assert message.startswith(f"{SIGNATURES[fn]} {words}.")
    assert '"parameters"' in message and '"data"' in message  # how to call it instead


@pytest.mark.parametrize("fn, kwargs, words", [
    (plain, {"a": 1, "c": 2}, "has no argument(s) named c"),
    (plain, {"a": 1, "z": 2, "c": 3}, "has no argument(s) named c, z"),
    (plain, {"a": 1}, "is missing required argument(s) b"),
    (defaults, {"b": 1}, "is missing required argument(s) a"),
    (varargs, {"x": 1}, "has no argument(s) named x"),
    (varkw, {"x": 1}, "is missing required argument(s) a"),
    (kwonly, {"a": 1}, "is missing required argument(s) scale"),
    (posonly, {"a": 1, "b": 2}, "has no argument(s) named a"),
    (posonly, {"b": 2}, 'is missing required argument(s) a (positional-only: pass it in '
                        '"parameters")'),
    # with **rest a positional-only name given by name lands in `rest`: still missing
    (posonly_rest, {"a": 1}, "is missing required argument(s) a (positional-only"),
    (everything, {"a": 1, "b": 2, "c": 3}, "is missing required argument(s) a (positional"),
])
def test_named_calls_that_do_not_fit_name_the_signature(fn, kwargs, words):
    with pytest.raises(BadArguments) as error:
        check(fn).check_named(kwargs)
    with pytest.raises(TypeError):
        fn(**kwargs)  # Python would have refused it too
    assert str(error.value).startswith(f"{SIGNATURES[fn]} {words}")


def test_the_signature_is_shown_with_the_published_name():
    with pytest.raises(BadArguments, match=r"^predict\(a, b\) "):
        ArgumentCheck(plain, "predict").check_positional([])


def test_callable_objects_and_classes_are_checked_by_their_call_signature():
    class Model:
        def __call__(self, features, threshold=0.5): ...

    with pytest.raises(BadArguments, match=r"^model\(features, threshold\) has no arg"):
        ArgumentCheck(Model(), "model").check_named({"features": [1], "cutoff": 1})
    ArgumentCheck(Model(), "model").check_positional([[1], 0.2])


def test_builtins_without_a_signature_are_left_to_the_call():
    checker = ArgumentCheck(max, "max")
    checker.check_positional([1, 2, 3])
    checker.check_named({"anything": 1})
