"""The Model API calling convention, type conversion and response shape, over real HTTP."""

import pytest

from conftest import TEST_MODELS, start_gateway, version

SCRIPT = TEST_MODELS / "py_calls.py"


def public(function, **options):
    return {"access": {"public": True}, "versions": {1: version(SCRIPT, function, **options)}}


@pytest.fixture(scope="module")
async def gw(tmp_path_factory):
    names = ["kinds", "echo", "first_and_rest", "area", "total", "keyword_only", "result",
             "positional_only"]
    running = await start_gateway(tmp_path_factory.mktemp("calls"),
                                  {"models": {n: public(n) for n in names}})
    yield running
    await running.stop()


async def call(http, gw, model, body, **kwargs):
    async with http.post(gw.model_url(model), json=body, **kwargs) as resp:
        return resp.status, await resp.json(), resp.headers


async def test_data_becomes_keyword_arguments_including_kwargs(http, gw):
    assert (await call(http, gw, "area", {"data": {"width": 3, "height": 4}}))[1]["result"] == 12
    assert (await call(http, gw, "echo", {"data": {"x": 1, "y": [2]}}))[1]["result"] == {
        "x": 1, "y": [2]}
    assert (await call(http, gw, "first_and_rest", {"data": {"x": 1, "y": 2, "z": 3}})
            )[1]["result"] == {"x": 1, "rest": {"y": 2, "z": 3}}
    assert (await call(http, gw, "keyword_only", {"data": {"a": 2, "scale": 5}}))[1][
        "result"] == 10


async def test_parameters_become_positional_arguments_and_a_dict_is_one_argument(http, gw):
    assert (await call(http, gw, "area", {"parameters": [3, 4]}))[1]["result"] == 12
    assert (await call(http, gw, "area", {"parameters": [3]}))[1]["result"] == 3
    assert (await call(http, gw, "total", {"parameters": [{"x": 1, "y": 2, "z": 3}]})
            )[1]["result"] == 6
    assert (await call(http, gw, "positional_only", {"parameters": [1, 2]}))[1]["result"] == [
        1, 2]


async def test_json_types_arrive_as_the_python_types_of_the_table(http, gw):
    body = {"parameters": [{"a": 1}, [1, 2], "s", 1, 1.5, True, False, None]}
    status, answer, _ = await call(http, gw, "kinds", body)
    assert status == 200
    assert answer["result"]["positional"] == [
        "dict", "list", "str", "int", "float", "bool", "bool", "NoneType"]


@pytest.mark.parametrize("kind, expected", [
    ("np_int", 7), ("np_float", 1.5), ("np_bool", True), ("np_array", [[1, 2], [3, 4]]),
    ("np_nan", [1.0, None]), ("series", [1.0, 2.0, None]),
    ("frame", [{"a": 1, "b": "x"}, {"a": 2, "b": None}]),
    ("timestamps", [{"t": "2024-01-02T00:00:00"}]), ("decimal", 2.5),
    ("datetime", "2024-05-06T07:08:09"), ("date", "2024-05-06"), ("set", [3]),
    ("tuple", [1, "a"]), ("nan", None), ("inf", None), ("ninf", None),
    ("nested", {"a": [1, {"b": 0.5}]}),
])
async def test_results_are_converted_to_json(http, gw, kind, expected):
    status, answer, _ = await call(http, gw, "result", {"parameters": [kind]})
    assert (status, answer["result"]) == (200, expected)


async def test_an_unconvertible_result_is_a_500_naming_its_type(http, gw):
    status, answer, _ = await call(http, gw, "result", {"parameters": ["object"]})
    assert status == 500
    assert answer["error"]["type"] == "model_error"
    assert "builtins.object" in answer["error"]["message"]


async def test_the_response_has_the_model_api_shape(http, gw):
    status, answer, headers = await call(http, gw, "area", {"parameters": [2]})
    assert status == 200
    assert set(answer) == {"result", "release", "request_id", "model_time_in_ms", "timing"}
    assert set(answer["release"]) == {"model", "model_version", "model_version_number",
                                      "harness_version"}
    assert answer["release"]["model"] == "area"
    assert answer["release"]["model_version_number"] == 1
    assert len(answer["release"]["model_version"]) == 24
    assert 0 <= answer["model_time_in_ms"] <= answer["timing"]
    assert headers["X-Request-Id"] == answer["request_id"]
    assert headers["Content-Type"].startswith("application/json")


async def test_a_client_request_id_is_kept_and_an_absurd_one_replaced(http, gw):
    _, answer, headers = await call(http, gw, "area", {"parameters": [2]},
                                    headers={"X-Request-Id": "trace-42"})
    assert answer["request_id"] == headers["X-Request-Id"] == "trace-42"
    _, answer, _ = await call(http, gw, "area", {"parameters": [2]},
                              headers={"X-Request-Id": "x" * 5000})
    assert len(answer["request_id"]) < 100


async def test_routes_latest_number_and_prod_under_both_routings(gateway_factory, http):
    two = {1: version(SCRIPT, "area"), 2: version(SCRIPT, "area")}
    gw = await gateway_factory({"models": {
        "basic": {"access": {"public": True}, "versions": two},
        "advanced": {"access": {"public": True}, "routing": "advanced", "promoted": 1,
                     "versions": two}}})

    async def number(model, label):
        async with http.post(gw.model_url(model, label), json={"parameters": [1]}) as resp:
            return (await resp.json())["release"]["model_version_number"]

    assert [await number("basic", label) for label in ("latest", "prod", 1, 2)] == [2, 2, 1, 2]
    assert [await number("advanced", label) for label in ("latest", "prod", 1, 2)] == [
        2, 1, 1, 2]
