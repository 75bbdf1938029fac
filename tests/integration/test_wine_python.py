"""The Python wine example served through the real gateway answers what its pickle predicts."""

import asyncio
import subprocess
import sys

import numpy as np
import pytest

from conftest import EXAMPLES, require, version

joblib = require("joblib", "MODELGATE_TEST_SKIP_EXAMPLES")
require("sklearn", "MODELGATE_TEST_SKIP_EXAMPLES")

WINE = EXAMPLES / "wine"
MODEL = WINE / "results" / "classifier.pkl"
DATA = WINE / "winequality-red.csv"


@pytest.fixture(scope="module")
def wine_rows():
    """About 20 wines spread over the data set, training the model first if it is missing."""
    if not MODEL.exists() or not DATA.exists():
        subprocess.run([sys.executable, str(WINE / "train.py")], check=True,
                       capture_output=True, timeout=100)
    lines = DATA.read_text().splitlines()[1:]
    return [[float(v) for v in line.split(";")[:11]] for line in lines[::80]]


async def post(http, url, body):
    async with http.post(url, json=body) as resp:
        return resp.status, await resp.json()


async def test_the_served_wine_model_predicts_what_its_pickle_predicts(
        gateway_factory, http, wine_rows):
    expected = [int(q) for q in joblib.load(MODEL).predict(np.array(wine_rows))]
    assert len(wine_rows) == 20 and len(set(expected)) > 1  # a meaningful sample

    gw = await gateway_factory({"models": {"wine": {
        "access": {"public": True},
        "versions": {1: version(WINE / "predict.py", "predict", workers=2)}}}})
    answers = await asyncio.gather(*(
        post(http, gw.model_url("wine"), {"parameters": [row]}) for row in wine_rows))

    assert [status for status, _ in answers] == [200] * len(wine_rows)
    served = [body["result"] for _, body in answers]
    assert all(type(q) is int for q in served), served  # 5, not 5.0 or "5"
    assert served == expected

    # A list of wines in one call: a list of ints, in order.
    status, body = await post(http, gw.model_url("wine"), {"parameters": [wine_rows]})
    assert (status, body["result"]) == (200, expected)
