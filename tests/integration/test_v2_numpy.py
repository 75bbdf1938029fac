"""``tensors: numpy``: V2 calls reach the function as NumPy arrays made in the worker, through
the real gateway and a real worker, with ``tritonclient.http`` as the client; a version without
it keeps getting plain lists."""

import numpy as np
import pytest

from conftest import TEST_MODELS, require, start_gateway, version

httpclient = require("tritonclient.http", "MODELGATE_TEST_SKIP_V2")
from tritonclient.utils import np_to_triton_dtype  # noqa: E402

SCRIPT = TEST_MODELS / "v2_functions.py"


@pytest.fixture(scope="module")
async def gw(tmp_path_factory):
    running = await start_gateway(tmp_path_factory.mktemp("v2numpy"), {"models": {
        "arrays": {"access": {"public": True},
                   "versions": {1: version(SCRIPT, "inspect_array", tensors="numpy")}},
        "lists": {"access": {"public": True},
                  "versions": {1: version(SCRIPT, "inspect_array")}},
    }})
    yield running
    await running.stop()


def infer(gw, model, inputs, binary=True):
    client = httpclient.InferenceServerClient(gw.url.removeprefix("http://"))
    try:
        tensors = []
        for name, array in inputs.items():
            t = httpclient.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
            t.set_data_from_numpy(array, binary_data=binary)
            tensors.append(t)
        return client.infer(model, tensors).get_response()
    finally:
        client.close()


def outputs(response):
    return {o["name"]: o["data"] for o in response["outputs"]}


@pytest.mark.parametrize("binary", [True, False])
async def test_a_big_matrix_reaches_the_function_as_an_ndarray(gw, binary):
    x = np.random.default_rng(1).normal(size=(10_000, 11))
    got = outputs(infer(gw, "arrays", {"x": x}, binary))
    assert got["type"] == ["ndarray"] and got["shape"] == [10_000, 11]
    assert got["dtype"] == ["float64"]
    assert got["sum"] == [pytest.approx(float(x.sum()))]
    # binary data: a read-only view of the received message, not a copy
    assert got["writeable"] == [not binary]


async def test_named_inputs_of_several_dtypes(gw):
    got = outputs(infer(gw, "arrays", {"x": np.arange(6, dtype=np.int32).reshape(2, 3),
                                       "factor": np.array([2.0], dtype=np.float32)}))
    assert got["dtype"] == ["int32"] and got["shape"] == [2, 3] and got["sum"] == [30.0]


async def test_a_version_without_it_still_gets_lists(gw):
    got = outputs(infer(gw, "lists", {"x": np.ones((3, 2))}))
    assert got["type"] == ["list"] and got["shape"] == [3, 2] and got["sum"] == [6.0]


async def test_plain_model_calls_to_a_numpy_version_are_unchanged(gw, http):
    async with http.post(f"{gw.url}/models/arrays/1/model",
                         json={"parameters": [[[1, 2], [3, 4]]]}) as resp:
        assert resp.status == 200
        assert (await resp.json())["result"]["type"] == "list"


async def test_a_malformed_tensor_is_a_400_from_the_worker(gw, http):
    body = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3]}]}
    async with http.post(f"{gw.url}/v2/models/arrays/infer", json=body) as resp:
        assert resp.status == 400
        assert "shape [2, 2]" in (await resp.json())["error"]
    head = b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", ' \
           b'"parameters": {"binary_data_size": 16}}]}'
    async with http.post(f"{gw.url}/v2/models/arrays/infer", data=head + b"\0" * 8,
                         headers={"Inference-Header-Content-Length": str(len(head))}) as resp:
        assert resp.status == 400, await resp.text()


@pytest.mark.parametrize("options", [{"batch": {"max_size": 4}}, {"language": "r"}])
def test_numpy_is_refused_for_r_and_batched_versions(tmp_path, options):
    from gateway import config

    entry = {**version(SCRIPT, "inspect_array", tensors="numpy"), **options}
    raw = {"models": {"m": {"versions": {1: entry}}}}
    with pytest.raises(config.ConfigError, match="tensors: numpy is for Python"):
        config.parse(raw, str(tmp_path / "c.yaml"), check_scripts=False)
