"""How deep a call's arguments and results may nest (issue 15, H3): one limit for Python and R,
checked before conversion, and no conversion error kills a worker."""

import msgspec
import pytest

from conftest import TEST_MODELS, require
from workers.calls import answer
from workers.errors import BadArguments, ModelFailure
from workers.runners.python import PythonRunner
from workers.wire import MAX_NESTING, BadEnvelope, Call, decode_envelope, nested_deeper_than


def nested(depth):
    value = 1
    for _ in range(depth):
        value = [value]
    return value


def body_nested(levels):
    """A ``{"parameters": [...]}`` body nested ``levels`` deep in all (its own object too)."""
    return msgspec.json.encode({"parameters": [nested(levels - 2)]})


def test_nesting_is_measured_without_recursion():
    assert not nested_deeper_than(3, nested(3))
    assert nested_deeper_than(3, nested(4))
    assert nested_deeper_than(3, {"a": [{"b": []}, 1]}) is True
    assert not nested_deeper_than(2, [1, {"x": 2}, [3]])
    assert nested_deeper_than(10, nested(100_000))  # far beyond the recursion limit


def test_a_body_nested_deeper_than_the_limit_is_refused_before_any_runner_sees_it():
    decode_envelope(body_nested(MAX_NESTING))
    with pytest.raises(BadEnvelope, match=f"more than {MAX_NESTING} levels"):
        decode_envelope(body_nested(MAX_NESTING + 1))
    deep_dict = b'{"data": {"x": ' + b'{"a": ' * MAX_NESTING + b"1" + b"}" * MAX_NESTING + b"}}"
    with pytest.raises(BadEnvelope, match="levels deep"):
        decode_envelope(deep_dict)


class Exploding:
    """A runner whose conversion fails in a way no check foresaw."""

    def call(self, args, kwargs):
        raise RecursionError("maximum recursion depth exceeded")


def test_an_unexpected_conversion_error_is_a_500_for_that_call_not_a_dead_worker():
    reply = answer(Exploding(), Call(7, b'{"parameters": [1]}'))
    assert (reply.error.status, reply.error.type) == (500, "internal")
    assert "RecursionError" in reply.error.message and "worker log" in reply.error.message


def test_a_python_result_too_deep_for_json_is_a_model_error():
    runner = PythonRunner(str(TEST_MODELS / "hostile.py"), "nest")
    with pytest.raises(ModelFailure, match="nested too deeply"):
        runner.call([5000], None)



@pytest.fixture(scope="module")
def r_runner():
    require("rpy2.rinterface", "MODELGATE_TEST_SKIP_R")
    from workers.runners.r import RRunner

    return lambda function: RRunner(str(TEST_MODELS / "hostile.R"), function)


def test_r_refuses_arguments_nested_deeper_than_the_limit_as_python_does(r_runner):
    take = r_runner("take")
    assert take.call([nested(MAX_NESTING - 2)], None)[0].isdigit()
    with pytest.raises(BadArguments, match=f"more than {MAX_NESTING} levels"):
        take.call([nested(400)], None)
    with pytest.raises(BadArguments, match=f"more than {MAX_NESTING} levels"):
        take.call(None, {"x": nested(5000)})


def test_an_r_result_nested_too_deeply_is_a_model_error(r_runner):
    nest = r_runner("nest")
    assert msgspec.json.decode(nest.call([3], None)[0]) == [[[[1]]]]
    with pytest.raises(ModelFailure, match="nested more than"):
        nest.call([400], None)
