"""The Model API calling convention, type conversion and response shape, over real HTTP
against a real gateway and real worker processes (SPEC §3)."""

import json

import pytest

from conftest import TEST_MODELS, start_gateway, version
from gateway import __version__

SCRIPT = TEST_MODELS / "py_calls.py"
FUNCTIONS = ["kinds", "echo", "first_and_rest", "area", "total", "keyword_only", "result",
             "positional_only"]


def public(function, **options):
    return {"access": {"public": True}, "versions": {1: version(SCRIPT, function, **options)}}


@pytest.fixture(scope="module")
async def gw(tmp_path_factory):
    running = await start_gateway(tmp_path_factory.mktemp("calls"),
                                  {"models": {n: public(n) for n in FUNCTIONS}})
    yield running
    await running.stop()


def refuse(constant):
    raise AssertionError(f"the response holds {constant}, which is not JSON")


async def call(http, gw, model, body, label="latest", **kwargs):
    """Status, strictly parsed JSON body and headers of one call."""
    async with http.post(gw.model_url(model, label), json=body, **kwargs) as resp:
        return resp.status, json.loads(await resp.read(), parse_constant=refuse), resp.headers


async def result_of(http, gw, model, body):
    status, answer, _ = await call(http, gw, model, body)
    assert status == 200, answer
    return answer["result"]


# ------------------------------------------------------------------ calling convention


async def test_data_becomes_keyword_arguments(http, gw):
    assert await result_of(http, gw, "area", {"data": {"width": 3, "height": 4}}) == 12
    assert await result_of(http, gw, "area", {"data": {"height": 4, "width": 3}}) == 12
    assert await result_of(http, gw, "area", {"data": {"width": 3}}) == 3  # default height
    assert await result_of(http, gw, "keyword_only", {"data": {"a": 2, "scale": 5}}) == 10


async def test_data_fills_kwargs(http, gw):
    assert await result_of(http, gw, "echo", {"data": {"x": 1, "y": [2], "z": {"w": None}}}
                           ) == {"x": 1, "y": [2], "z": {"w": None}}
    assert await result_of(http, gw, "echo", {"data": {}}) == {}
    assert await result_of(http, gw, "first_and_rest", {"data": {"x": 1, "y": 2, "z": 3}}
                           ) == {"x": 1, "rest": {"y": 2, "z": 3}}


async def test_parameters_become_positional_arguments(http, gw):
    assert await result_of(http, gw, "area", {"parameters": [3, 4]}) == 12
    assert await result_of(http, gw, "area", {"parameters": [3]}) == 3
    assert await result_of(http, gw, "positional_only", {"parameters": [1, 2]}) == [1, 2]
    assert await result_of(http, gw, "kinds", {"parameters": []}) == {
        "positional": [], "named": {}}


async def test_a_dict_in_parameters_is_passed_as_one_dict_argument(http, gw):
    assert await result_of(http, gw, "total", {"parameters": [{"x": 1, "y": 2, "z": 3}]}) == 6
    assert await result_of(http, gw, "echo", {"parameters": []}) == {}
    assert await result_of(http, gw, "kinds", {"parameters": [{"width": 1}]}) == {
        "positional": ["dict"], "named": {}}


# ------------------------------------------------------------------ JSON -> Python


JSON_TO_PYTHON = [  # SPEC §3, the Python column: (JSON value, type name in the function)
    ({"a": 1}, "dict"), ([1, "x"], "list"), ([], "list"), ("s", "str"), ("", "str"),
    (1, "int"), (-7, "int"), (10**18, "int"), (1.5, "float"), (1.0, "float"), (-2e-3, "float"),
    (True, "bool"), (False, "bool"), (None, "NoneType"),
]


async def test_json_types_arrive_as_the_python_types_of_the_table_positionally(http, gw):
    body = {"parameters": [value for value, _ in JSON_TO_PYTHON]}
    assert (await result_of(http, gw, "kinds", body))["positional"] == [
        name for _, name in JSON_TO_PYTHON]


async def test_json_types_arrive_as_the_python_types_of_the_table_by_name(http, gw):
    body = {"data": {f"v{i}": value for i, (value, _) in enumerate(JSON_TO_PYTHON)}}
    assert (await result_of(http, gw, "kinds", body))["named"] == {
        f"v{i}": name for i, (_, name) in enumerate(JSON_TO_PYTHON)}


async def test_values_arrive_intact(http, gw):
    value = {"int": 10**18, "float": 0.1, "text": "é ☃ \u0000", "nested": [[1, [2, {"a": None}]]],
             "bools": [True, False]}
    assert await result_of(http, gw, "echo", {"data": value}) == value


# ------------------------------------------------------------------ Python -> JSON


@pytest.mark.parametrize("kind, expected", [
    ("np_int", 7), ("np_float", 1.5), ("np_bool", True), ("np_array", [[1, 2], [3, 4]]),
    ("np_nan", [1.0, None]), ("np_f32_array", [0.5, None, None]),
    ("np_2d_nan", [[1.0, None], [None, 2.0]]), ("series", [1.0, 2.0, None]),
    ("frame", [{"a": 1, "b": "x"}, {"a": 2, "b": None}]),
    ("frame_nan", [{"a": 1.0, "t": "2024-01-02T00:00:00"}, {"a": None, "t": None}]),
    ("timestamps", [{"t": "2024-01-02T00:00:00"}]), ("timestamp", "2024-01-02T03:04:05"),
    ("decimal", 2.5), ("decimal_nan", None), ("decimal_inf", [None, None]),
    ("datetime", "2024-05-06T07:08:09"), ("aware", "2024-05-06T07:08:09Z"),
    ("date", "2024-05-06"), ("set", [3]), ("frozenset", ["z"]), ("tuple", [1, "a"]),
    ("nan", None), ("inf", None), ("ninf", None), ("nested", {"a": [1, {"b": 0.5}]}),
    ("mixed", {"n": 1, "when": "2024-01-02", "tags": ["a"], "rows": [{"x": None}],
               "price": 9.99}),
])
async def test_results_are_converted_to_json(http, gw, kind, expected):
    assert await result_of(http, gw, "result", {"parameters": [kind]}) == expected


async def test_a_decimal_comes_back_as_a_json_number(http, gw):
    async with http.post(gw.model_url("result"), json={"parameters": ["decimal"]}) as resp:
        assert (await resp.read()).startswith(b'{"result":2.50,')


@pytest.mark.parametrize("kind, type_name", [("object", "builtins.object"),
                                             ("complex", "builtins.complex")])
async def test_an_unconvertible_result_is_a_500_naming_its_type(http, gw, kind, type_name):
    status, answer, _ = await call(http, gw, "result", {"parameters": [kind]})
    assert status == 500
    assert answer["error"]["type"] == "model_error"
    assert type_name in answer["error"]["message"]
    assert await result_of(http, gw, "result", {"parameters": ["np_int"]}) == 7  # still serving


# ------------------------------------------------------------------ response shape


async def test_the_response_has_exactly_the_model_api_shape(http, gw):
    status, answer, headers = await call(http, gw, "area", {"parameters": [2]})
    assert status == 200
    assert list(answer) == ["result", "release", "request_id", "model_time_in_ms", "timing"]
    release = answer["release"]
    assert list(release) == ["model", "model_version", "model_version_number",
                             "harness_version", "script", "function"]
    assert (answer["result"], release["model"], release["model_version_number"],
            release["harness_version"], release["script"], release["function"]) == (
        2, "area", 1, __version__, "py_calls.py", "area")
    assert isinstance(release["model_version"], str) and len(release["model_version"]) >= 8
    assert isinstance(answer["model_time_in_ms"], float)
    assert isinstance(answer["timing"], float)
    assert 0 <= answer["model_time_in_ms"] <= answer["timing"] < 10_000
    assert headers["Content-Type"].startswith("application/json")
    assert headers["X-Request-Id"] == answer["request_id"]


async def test_model_time_is_the_time_inside_the_function(gateway_factory, http):
    gw = await gateway_factory({"models": {"who": public("whoami")}})
    status, answer, _ = await call(http, gw, "who", {"parameters": [0.2]})
    assert status == 200
    assert 200 <= answer["model_time_in_ms"] <= answer["timing"]


async def test_a_request_id_is_made_when_the_client_sends_none(http, gw):
    ids = set()
    for _ in range(3):
        _, answer, headers = await call(http, gw, "area", {"parameters": [2]})
        assert answer["request_id"] and headers["X-Request-Id"] == answer["request_id"]
        ids.add(answer["request_id"])
    assert len(ids) == 3


async def test_a_client_request_id_is_kept_and_an_absurd_one_replaced(http, gw):
    _, answer, headers = await call(http, gw, "area", {"parameters": [2]},
                                    headers={"X-Request-Id": "trace-42"})
    assert answer["request_id"] == headers["X-Request-Id"] == "trace-42"
    _, answer, headers = await call(http, gw, "area", {"parameters": [2]},
                                    headers={"X-Request-Id": "x" * 5000})
    assert answer["request_id"] == headers["X-Request-Id"]
    assert 0 < len(answer["request_id"]) < 100


async def test_the_model_version_id_is_stable_for_the_same_content(gateway_factory, http):
    config = {"models": {"a": public("area"), "b": public("area"), "c": public("total")}}
    first, second = await gateway_factory(config), await gateway_factory(config)

    async def version_id(gw, model, body):
        status, answer, _ = await call(http, gw, model, body)
        assert status == 200
        return answer["release"]["model_version"]

    a1 = await version_id(first, "a", {"parameters": [1]})
    assert a1 == await version_id(second, "a", {"parameters": [1]})  # a restart keeps it
    assert a1 != await version_id(first, "c", {"parameters": [{"x": 1}]})  # other function


# ------------------------------------------------------------------ routes


async def test_routes_latest_number_and_prod_under_both_routings(gateway_factory, http):
    three = {n: version(SCRIPT, "area") for n in (1, 2, 3)}
    gw = await gateway_factory({"models": {
        "basic": {"access": {"public": True}, "versions": three},
        "advanced": {"access": {"public": True}, "routing": "advanced", "promoted": 2,
                     "versions": three},
        "held-back": {"access": {"public": True}, "versions": {
            **three, 3: {**three[3], "unpublished": True}}}}})

    async def number(model, label):
        status, answer, _ = await call(http, gw, model, {"parameters": [1]}, label=label)
        assert status == 200, answer
        assert answer["release"]["model"] == model
        return answer["release"]["model_version_number"]

    labels = ("latest", "prod", 1, 2, 3)
    assert [await number("basic", label) for label in labels] == [3, 3, 1, 2, 3]
    assert [await number("advanced", label) for label in labels] == [3, 2, 1, 2, 3]
    # an unpublished version is not the latest
    assert [await number("held-back", label) for label in labels[:4]] == [2, 2, 1, 2]
