"""What a small hostile V2 request may make the gateway build (issue 15, H1 and H2): the
tensors' cost is checked against the body's size before anything is built, and nested data
is flattened in one pass that stops at the first level or value too many."""

import time

import msgspec
import pytest

from gateway.errors import BadRequest
from gateway.tensors import MAX_DIMS, MAX_INPUTS, call_body, cells

EMPTY_BUT_HUGE = [65536] + [1] * 30 + [0]  # 65536 * 31 lists for no value at all


def body(*inputs):
    return msgspec.json.encode({"inputs": list(inputs)})


def bools(name, shape, data):
    return {"name": name, "shape": shape, "datatype": "BOOL", "data": data}


def timed_refusal(raw, fragment):
    started = time.perf_counter()
    with pytest.raises(BadRequest, match=fragment):
        call_body(raw, None)
    return time.perf_counter() - started


def test_cells_count_the_values_and_the_lists_reshaping_builds():
    assert cells([]) == 1
    assert cells([3]) == 4
    assert cells([2, 0, 5]) == 3  # nothing is built past the first 0
    assert cells(EMPTY_BUT_HUGE) == 1 + 65536 * 31


def test_an_empty_tensor_with_many_dimensions_is_refused_before_it_is_built():
    raw = body(bools("x", EMPTY_BUT_HUGE, []))
    assert len(raw) < 200
    assert timed_refusal(raw, "more than a body of") < 0.05


def test_many_empty_inputs_add_up_against_the_one_budget():
    # one alone fits the floor of the budget; two together do not
    shape = [12000] + [1] * 3 + [0]
    call_body(body(bools("a", shape, [])), None)
    raw = body(*(bools(name, shape, []) for name in "abcd"))
    timed_refusal(raw, "input `b`")


def test_huge_dimensions_are_refused_without_building_anything():
    for shape in ([2**62, 2**62], [10**18], [2**40, 0]):
        timed_refusal(body(bools("x", shape, [True])), "more than a body of")


def test_the_number_of_inputs_is_bounded():
    raw = body(*(bools(f"x{i}", [], [True]) for i in range(MAX_INPUTS + 1)))
    with pytest.raises(BadRequest, match=f"length <= {MAX_INPUTS}"):
        call_body(raw, None)


def test_a_budget_grows_with_the_body_so_large_honest_tensors_pass():
    data = [1.5] * 200_000
    _, out = call_body(body({"name": "x", "shape": [200_000, 1], "datatype": "FP64",
                             "data": data}), None)
    assert len(msgspec.json.decode(out)["data"]["x"]) == 200_000


def test_flattening_is_linear_and_stops_at_the_first_level_too_deep():
    # 29,000 flat values then a list nested 900 deep: quadratic flattening took seconds
    nested: list = [0]
    for _ in range(30):
        nested = [nested]
    raw = body(bools("x", [29_001], [False] * 29_000 + [nested]))
    assert timed_refusal(raw, "does not match|holds") < 0.3  # 31 levels: flattened, then typed
    for _ in range(MAX_DIMS):
        nested = [nested]
    raw = body(bools("x", [29_001], [False] * 29_000 + [nested]))
    assert timed_refusal(raw, f"nested deeper than {MAX_DIMS}") < 0.3


def test_flattening_stops_once_the_data_holds_more_than_the_shape():
    raw = body(bools("x", [2], [[True, False], [True]] + [[False]] * 100_000))
    timed_refusal(raw, "more than the 2 values")


def test_nested_data_of_the_right_shape_still_flattens():
    _, out = call_body(body({"name": "x", "shape": [2, 2, 2], "datatype": "INT64",
                             "data": [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]}), None)
    assert msgspec.json.decode(out)["data"]["x"] == [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]
