"""JSON <-> R conversion (SPEC §3) and R errors, through a real embedded R and RRunner."""

import pytest

from conftest import TEST_MODELS, require
from workers.errors import BadArguments, LoadError, ModelFailure

ri = require("rpy2.rinterface", "MODELGATE_TEST_SKIP_R")

from workers.runners.r import RRunner  # noqa: E402

SCRIPT = str(TEST_MODELS / "r_models.R")


def run(function, *args, **kwargs):
    result, _ = RRunner(SCRIPT, function).call(list(args) if not kwargs else None,
                                              kwargs or None)
    return result


@pytest.mark.parametrize("value, r_class, length", [
    ({"a": 1}, "list", 1),
    ([1, 2, 3], "integer", 3),
    ([1, 2.5], "numeric", 2),
    (["a", "b"], "character", 2),
    ([True, False], "logical", 2),
    ([1, "a"], "list", 2),
    ([[1, 2], [3]], "list", 2),
    ("text", "character", 1),
    (7, "integer", 1),
    (7.5, "numeric", 1),
    (True, "logical", 1),
    (None, "logical", 1),
    (2**40, "numeric", 1),
])
def test_json_values_arrive_as_the_r_types_of_the_table(value, r_class, length):
    import msgspec

    got = msgspec.json.decode(run("describe", value))
    assert got["class"] == r_class
    assert got["length"] == length


def test_null_inside_an_array_is_na_of_that_vectors_type():
    import msgspec

    assert msgspec.json.decode(run("describe", [1, None, 3])) == {
        "class": "integer", "length": 3, "value": [1, None, 3]}
    assert msgspec.json.decode(run("describe", ["a", None]))["class"] == "character"
    assert msgspec.json.decode(run("describe", [1.5, None]))["class"] == "numeric"


def test_objects_become_named_lists_and_come_back_as_objects():
    assert run("echo", {"k": 1, "nested": {"x": [1, 2]}}) == (
        b'[{"k":1,"nested":{"x":[1,2]}}]')
    assert run("echo", a=1, b="x") == b'{"a":1,"b":"x"}'


def test_r_values_come_back_as_json():
    assert run("frame") == b'[{"a":1.5,"b":"x","f":"lo"},{"a":null,"b":"y","f":"hi"}]'
    assert run("matrix23") == b"[[1,3,5],[2,4,6]]"
    assert run("factor1") == b'"b"'
    assert run("special") == (b'{"na":null,"nan":null,"inf":null,"ninf":null,"null":null,'
                              b'"vec":[1.0,null,null,null],"empty":[],"int_na":null}')
    assert run("add", 2, 3) == b"5"
    assert run("add", 2.5) == b"3.5"


def test_named_and_positional_calls():
    assert run("named", "x", "y") == b'"x y"'
    assert run("named", b="y", a="x") == b'"x y"'


def test_wrong_arity_or_unknown_names_are_bad_arguments_naming_the_formals():
    runner = RRunner(SCRIPT, "add")
    with pytest.raises(BadArguments, match=r"add\(x, y\) takes at most 2"):
        runner.call([1, 2, 3], None)
    with pytest.raises(BadArguments, match=r"has no argument.* named z"):
        runner.call(None, {"z": 1})
    with pytest.raises(BadArguments, match=r"missing required argument.* x"):
        runner.call([], None)


def test_stop_is_a_model_failure_with_the_r_message_and_the_runner_keeps_working():
    runner = RRunner(SCRIPT, "boom")
    with pytest.raises(ModelFailure, match="x must be positive"):
        runner.call([], None)
    assert RRunner(SCRIPT, "add").call([1, 1], None)[0] == b"2"


def test_a_warning_is_not_fatal():
    assert run("warns", 2) == b"4.0"


def test_an_unconvertible_result_names_its_r_class():
    with pytest.raises(ModelFailure, match="function"):
        run("closure")


def test_a_script_that_fails_to_source_or_a_missing_function_cannot_load():
    with pytest.raises(LoadError, match="cannot find the model file"):
        RRunner(str(TEST_MODELS / "r_broken.R"), "anything")
    with pytest.raises(LoadError, match="does not define nope"):
        RRunner(SCRIPT, "nope")
