"""The Open Inference Protocol (KServe V2) through a client nobody here wrote: NVIDIA's
``tritonclient.http``, against the real gateway and real Python and R workers (SPEC §3)."""

import asyncio
import hashlib
import os

import numpy as np
import pytest

from conftest import EXAMPLES, TEST_MODELS, require, start_gateway, version

httpclient = require("tritonclient.http", "MODELGATE_TEST_SKIP_V2")
from tritonclient.utils import InferenceServerException  # noqa: E402

SCRIPT = TEST_MODELS / "v2_functions.py"
TOKEN = "v2-secret-token"


def public(*versions, **options):
    return {"access": {"public": True},
            "versions": {n: v for n, v in enumerate(versions, 1)}, **options}


@pytest.fixture(scope="module")
async def gw(tmp_path_factory):
    running = await start_gateway(tmp_path_factory.mktemp("v2"), {
        "tokens": {"ci": {"sha256": hashlib.sha256(TOKEN.encode()).hexdigest()}},
        "models": {
            "scale": public(version(SCRIPT, "scale")),
            "summary": public(version(SCRIPT, "summary")),
            "describe": public(version(SCRIPT, "describe")),
            "fail": public(version(SCRIPT, "fail")),
            "locked": {"access": {"public": False, "tokens": ["ci"]},
                       "versions": {1: version(SCRIPT, "scale")}},
            # production is v1 (promoted), the latest is v2
            "pinned": public(version(SCRIPT, "scale"), version(SCRIPT, "describe"),
                             routing="advanced", promoted=1),
        }})
    yield running
    await running.stop()


async def triton(gw, use, **headers):
    """``use(client)`` with a tritonclient of ``gw``, in a thread (the client is blocking)."""

    def run():
        client = httpclient.InferenceServerClient(gw.url.removeprefix("http://"))
        try:
            return use(client)
        finally:
            client.close()

    return await asyncio.to_thread(run)


def tensor(name, array, binary=True):
    from tritonclient.utils import np_to_triton_dtype

    value = httpclient.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
    return value.set_data_from_numpy(array, binary_data=binary)


async def infer(gw, model, *inputs, **kwargs):
    return await triton(gw, lambda c: c.infer(model, list(inputs), **kwargs))


# ------------------------------------------------------------------ health and metadata


async def test_server_is_live_and_ready_with_metadata(gw):
    assert await triton(gw, lambda c: c.is_server_live())
    assert await triton(gw, lambda c: c.is_server_ready())
    meta = await triton(gw, lambda c: c.get_server_metadata())
    assert meta["name"] == "modelgate" and meta["extensions"] == []


async def test_model_metadata_names_versions_and_platform(gw):
    meta = await triton(gw, lambda c: c.get_model_metadata("pinned"))
    assert meta == {"name": "pinned", "versions": ["1", "2"], "platform": "modelgate-python",
                    "inputs": [], "outputs": []}
    assert (await triton(gw, lambda c: c.get_model_metadata("pinned", "2")))["name"] == "pinned"
    assert await triton(gw, lambda c: c.is_model_ready("scale"))
    assert await triton(gw, lambda c: c.is_model_ready("pinned", "2"))
    assert not await triton(gw, lambda c: c.is_model_ready("pinned", "7"))
    assert not await triton(gw, lambda c: c.is_model_ready("nope"))


# ------------------------------------------------------------------ inference


@pytest.mark.parametrize("binary", [True, False])
async def test_inputs_become_named_arguments_and_a_list_result_keeps_its_shape(gw, binary):
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    result = await infer(gw, "scale", tensor("x", x, binary),
                         tensor("factor", np.array(3, dtype=np.int64), binary))
    out = result.get_output("result")
    assert (out["datatype"], out["shape"]) == ("FP64", [2, 3])
    np.testing.assert_array_equal(result.as_numpy("result"), x * 3)
    response = result.get_response()
    assert (response["model_name"], response["model_version"]) == ("scale", "1")
    assert response["id"]  # the gateway's request id when the client sends none

    ints = await infer(gw, "scale", tensor("x", np.array([[1, -2]], dtype=np.int32), binary),
                       request_id="mine-1")
    assert ints.get_output("result")["datatype"] == "INT64"
    np.testing.assert_array_equal(ints.as_numpy("result"), [[2, -4]])
    assert ints.get_response()["id"] == "mine-1"


def cpu_ticks(pid):
    """CPU time (user + system, in clock ticks) of process ``pid``'s main thread, where the
    gateway's event loop runs, and of all its other threads together."""
    loop = others = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # a thread that just ended
            continue
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        if int(tid) == pid:
            loop += ticks
        else:
            others += ticks
    return loop, others


@pytest.mark.parametrize("binary", [True, False])
async def test_a_large_tensor_is_converted_off_the_event_loop_with_the_same_result(gw, binary):
    """Megabytes of tensor both ways: most of the gateway's CPU time for the call is spent
    outside the event loop's thread (CPU time, not elapsed time: load does not change it)."""
    x = np.arange(250_000, dtype=np.float64).reshape(500, 500) / 7
    loop_before, others_before = cpu_ticks(gw.process.pid)
    result = await infer(gw, "scale", tensor("x", x, binary))
    loop_after, others_after = cpu_ticks(gw.process.pid)
    loop_ticks, other_ticks = loop_after - loop_before, others_after - others_before
    assert result.get_output("result")["shape"] == [500, 500]
    np.testing.assert_allclose(result.as_numpy("result"), x * 2)
    assert other_ticks > loop_ticks, (
        f"the event loop's thread spent {loop_ticks} ticks on the call, other threads "
        f"{other_ticks}: the tensors were converted on the event loop")


@pytest.mark.parametrize("binary", [True, False])
async def test_a_dict_result_is_one_output_per_key_with_inferred_types(gw, binary):
    label = np.array(["wine é"], dtype=np.object_).reshape(())
    result = await infer(gw, "summary", tensor("values", np.array([1.0, 2.0, 6.0]), binary),
                         tensor("label", label, binary))
    kinds = {o["name"]: (o["datatype"], o["shape"]) for o in result.get_response()["outputs"]}
    assert kinds == {"count": ("INT64", []), "mean": ("FP64", []), "positive": ("BOOL", [3]),
                     "label": ("BYTES", []), "records": ("BYTES", [3]), "ragged": ("BYTES", []),
                     "missing": ("FP64", [2])}
    assert result.as_numpy("count") == 3 and result.as_numpy("mean") == 3.0
    assert result.as_numpy("positive").tolist() == [True, True, True]
    assert result.as_numpy("label").item() == "wine é"
    assert result.as_numpy("records")[2] == '{"i":2,"v":6.0}'  # records: one JSON text each
    assert result.as_numpy("ragged").item() == "[[1.0],[1.0,2.0,6.0]]"
    assert np.isnan(result.as_numpy("missing")[1])  # null is NaN for NumPy
    only = await infer(gw, "summary", tensor("values", np.array([1.0]), binary),
                       tensor("label", label, binary),
                       outputs=[httpclient.InferRequestedOutput("count", binary_data=False)])
    assert [o["name"] for o in only.get_response()["outputs"]] == ["count"]


async def test_shape_empty_is_a_scalar_and_shape_one_a_one_element_list(gw):
    scalar = await infer(gw, "describe", tensor("x", np.array(4, dtype=np.int64), False))
    assert scalar.as_numpy("type").item() == "int"
    one = await infer(gw, "describe", tensor("x", np.array([4], dtype=np.int64), False))
    assert one.as_numpy("type").item() == "list"
    assert one.as_numpy("value").tolist() == [4]
    flags = await infer(gw, "describe", tensor("x", np.array([True, False]), True))
    assert flags.as_numpy("value").tolist() == [True, False]


async def test_without_a_version_the_production_version_answers(gw):
    x = tensor("x", np.array([1.0]))
    prod = await infer(gw, "pinned", x)
    assert prod.get_response()["model_version"] == "1"
    assert prod.as_numpy("result").tolist() == [2.0]
    latest = await infer(gw, "pinned", x, model_version="2")
    assert latest.get_response()["model_version"] == "2"
    assert latest.as_numpy("type").item() == "list"


# ------------------------------------------------------------------ errors, in the V2 form


async def raised(gw, use):
    with pytest.raises(InferenceServerException) as info:
        await triton(gw, use)
    return info.value.status(), info.value.message()


async def test_errors_keep_the_v2_form_and_the_status(gw):
    x = tensor("x", np.array([1.0]))
    status, message = await raised(gw, lambda c: c.infer("nope", [x]))
    assert status == "404" and "no model named `nope`" in message
    status, message = await raised(gw, lambda c: c.infer("scale", [x], model_version="9"))
    assert status == "404" and "no version 9" in message
    status, message = await raised(gw, lambda c: c.infer("fail", [tensor(
        "message", np.array("broken", dtype=np.object_), False)]))
    assert status == "500" and "ValueError: broken" in message
    status, message = await raised(gw, lambda c: c.infer("scale", [tensor("y", np.array(1))]))
    assert status == "400" and "no argument(s) named y" in message
    status, message = await raised(gw, lambda c: c.get_model_repository_index())
    assert status == "404" and message == "no route POST /v2/repository/index"


async def test_a_restricted_model_needs_its_token(gw, http):
    x = tensor("x", np.array([1.0]))
    status, message = await raised(gw, lambda c: c.infer("locked", [x]))
    assert status == "401" and "needs an access token" in message
    ok = await triton(gw, lambda c: c.infer("locked", [x],
                                            headers={"Authorization": f"Bearer {TOKEN}"}))
    assert ok.as_numpy("result").tolist() == [2.0]
    assert not await triton(gw, lambda c: c.is_model_ready("locked"))
    async with http.post(f"{gw.url}/v2/models/locked/infer", json={"inputs": []}) as resp:
        assert resp.status == 401 and "Bearer" in resp.headers["WWW-Authenticate"]
        body = await resp.json()
    assert set(body) == {"error"} and isinstance(body["error"], str)


@pytest.mark.parametrize(("body", "status", "fragment"), [
    (b"{", 400, "not valid JSON"),
    (b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [1]}]}', 400,
     "shape [2] holds 2 values; data has 1"),
    (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "INT64", "data": [1.5]}]}', 400,
     "does not match its datatype INT64"),
    (b'{"inputs": [{"name": "x", "shape": [-1], "datatype": "FP64", "data": []}]}', 400,
     "Expected `int` >= 0"),
    (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64",'
     b' "parameters": {"shared_memory_region": "r"}}]}', 400, "shared memory"),
    (b'{"inputs": [{"name": "x", "shape": [100000000, 0], "datatype": "FP64", "data": []}]}',
     400, "more than a body of"),
])
async def test_malformed_requests_are_400_in_the_v2_form(gw, http, body, status, fragment):
    async with http.post(f"{gw.url}/v2/models/scale/infer", data=body,
                         headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == status
        answer = await resp.json()
    assert fragment in answer["error"], answer


async def test_nested_data_and_empty_tensors_are_accepted(gw, http):
    nested = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64",
                          "data": [[1, 2], [3, 4]]}]}
    async with http.post(f"{gw.url}/v2/models/scale/infer", json=nested) as resp:
        assert (await resp.json())["outputs"][0]["data"] == [2.0, 4.0, 6.0, 8.0]
    empty = {"inputs": [{"name": "x", "shape": [2, 0], "datatype": "FP64", "data": []}]}
    async with http.post(f"{gw.url}/v2/models/describe/infer", json=empty) as resp:
        outputs = {o["name"]: o for o in (await resp.json())["outputs"]}
    assert outputs["value"]["shape"] == [2, 0]


async def test_v2_calls_are_counted_and_logged_as_model_calls(gw, http):
    body = {"inputs": [{"name": "message", "shape": [], "datatype": "BYTES", "data": ["no"]}]}
    async with http.post(f"{gw.url}/v2/models/fail/infer", json=body,
                         headers={"X-Request-Id": "v2-counted"}) as resp:
        assert resp.status == 500 and resp.headers["X-Request-Id"] == "v2-counted"
    async with http.get(f"{gw.url}/metrics") as resp:
        counted = [line for line in (await resp.text()).splitlines() if line.startswith(
            'modelgate_requests_total{code="500",model="fail",version="1"}')]
    assert counted and float(counted[0].split()[-1]) >= 1
    for _ in range(50):  # log lines are flushed every 0.2 s
        lines = [e for e in gw.events("request") if e.get("request_id") == "v2-counted"]
        if lines:
            break
        await asyncio.sleep(0.1)
    assert [(e["call"], e["model"], e["version"], e["status"]) for e in lines] == [
        ("v2_infer", "fail", 1, 500)]


async def test_unknown_routes_and_methods_under_v2_answer_in_the_v2_form(gw, http):
    async with http.get(f"{gw.url}/v2/models/scale/versions/x") as resp:
        assert resp.status == 404 and set(await resp.json()) == {"error"}
    async with http.put(f"{gw.url}/v2/health/live") as resp:
        assert resp.status == 405
        assert (await resp.json())["error"] == "PUT is not allowed here; use GET, HEAD"


# ------------------------------------------------------------------ R


@pytest.fixture(scope="module")
async def r_gw(tmp_path_factory):
    require("rpy2", "MODELGATE_TEST_SKIP_R")
    wine = EXAMPLES / "wine"
    if not (wine / "classifier.Rda").exists():
        pytest.fail("examples/wine/classifier.Rda is missing: `make models` trains it")
    r_script = TEST_MODELS / "r_models.R"
    running = await start_gateway(tmp_path_factory.mktemp("v2r"), {"models": {
        "add": public(version(r_script, "add")),
        "named": public(version(r_script, "named")),
        "wine": public(version(wine / "predict.R", "predictQuality")),
    }})
    yield running
    await running.stop()


async def test_r_models_answer_over_v2(r_gw, http):
    meta = await triton(r_gw, lambda c: c.get_model_metadata("add"))
    assert meta["platform"] == "modelgate-r"
    added = await infer(r_gw, "add", tensor("x", np.array([1.0, 2.5, -1.0])),
                        tensor("y", np.array(10, dtype=np.int64)))
    assert added.get_output("result")["datatype"] == "FP64"
    assert added.as_numpy("result").tolist() == [11.0, 12.5, 9.0]
    text = await infer(r_gw, "named", tensor("a", np.array("x", dtype=np.object_)),
                       tensor("b", np.array("y", dtype=np.object_)))
    assert text.as_numpy("result").item() == "x y"

    rows = [[float(v) for v in line.split(";")[:11]]
            for line in (EXAMPLES / "wine" / "winequality-red.csv").read_text().splitlines()[1:4]]
    async with http.post(r_gw.model_url("wine"), json={"parameters": [rows]}) as resp:
        expected = (await resp.json())["result"]
    wines = await infer(r_gw, "wine", tensor("features", np.array(rows)))
    out = wines.get_output("result")
    assert (out["datatype"], out["shape"]) == ("INT64", [3])
    assert wines.as_numpy("result").tolist() == expected
    one = await infer(r_gw, "wine", tensor("features", np.array(rows[0])))
    assert one.as_numpy("result").item() == expected[0]  # one wine: an R length-1 vector
