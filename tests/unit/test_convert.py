"""Results become JSON, including the values users trip over elsewhere (SPEC §3)."""

import datetime
import decimal

import msgspec
import numpy as np
import pandas as pd
import pytest

from workers.convert import Unconvertible, encode_result


def as_json(value):
    return msgspec.json.decode(encode_result(value))


@pytest.mark.parametrize("value, expected", [
    (np.int64(7), 7), (np.float32(1.5), 1.5), (np.bool_(True), True), (np.str_("a"), "a"),
    (np.array([[1, 2], [3, 4]]), [[1, 2], [3, 4]]), (np.array([1.0, np.nan]), [1.0, None]),
    (pd.Series([1.0, None]), [1.0, None]),
    (pd.DataFrame({"a": [1, 2], "b": ["x", None]}), [{"a": 1, "b": "x"}, {"a": 2, "b": None}]),
    (pd.DataFrame({"t": pd.to_datetime(["2024-01-02"])}), [{"t": "2024-01-02T00:00:00"}]),
    (decimal.Decimal("2.50"), 2.5), (datetime.datetime(2024, 5, 6, 7, 8, 9),
                                     "2024-05-06T07:08:09"),
    (datetime.date(2024, 5, 6), "2024-05-06"), ({3}, [3]), (frozenset([4]), [4]),
    ((1, "a"), [1, "a"]), (float("nan"), None), (float("inf"), None), (-float("inf"), None),
    ({"a": [np.int32(1), {"b": np.float64(0.5)}]}, {"a": [1, {"b": 0.5}]}),
    (pd.NA, None), (None, None),
])
def test_values_become_json(value, expected):
    assert as_json(value) == expected


def test_an_unconvertible_value_names_its_type():
    class Model:
        pass

    with pytest.raises(Unconvertible, match="Model"):
        encode_result({"model": Model()})
