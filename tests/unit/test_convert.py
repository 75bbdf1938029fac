"""Results become strict JSON, including the values users trip over elsewhere (SPEC §3)."""

import datetime
import decimal
import json

import numpy as np
import pandas as pd
import pytest

from workers.runners.convert import Unconvertible, encode_result


def refuse(constant):
    raise AssertionError(f"{constant} is not JSON")


def as_json(value):
    """The result as the client reads it; NaN/Infinity tokens would fail here."""
    return json.loads(encode_result(value), parse_constant=refuse)


class Opaque:
    """Something a model might return by mistake."""


@pytest.mark.parametrize("value, expected", [
    # NumPy scalars
    (np.int64(7), 7), (np.int32(-3), -3), (np.uint8(255), 255), (np.float32(1.5), 1.5),
    (np.float64(0.25), 0.25), (np.bool_(True), True), (np.bool_(False), False),
    (np.str_("a"), "a"), (np.float64("nan"), None), (np.float32("inf"), None),
    # NumPy arrays
    (np.array([1, 2, 3]), [1, 2, 3]), (np.array([[1, 2], [3, 4]]), [[1, 2], [3, 4]]),
    (np.array([0.5, np.nan], dtype=np.float32), [0.5, None]),
    (np.array([[1.0, np.nan], [np.inf, -np.inf]]), [[1.0, None], [None, None]]),
    (np.array([True, False]), [True, False]), (np.array([], dtype=float), []),
    (np.zeros((2, 0)), [[], []]), (np.array(["x", "y"]), ["x", "y"]),
    # pandas
    (pd.Series([1, 2, 3]), [1, 2, 3]), (pd.Series([1.0, None]), [1.0, None]),
    (pd.Series(pd.to_datetime(["2024-01-02 03:04:05"])), ["2024-01-02T03:04:05"]),
    (pd.Series(["a", "b"], index=["i", "j"]), ["a", "b"]),
    (pd.DataFrame({"a": [1, 2], "b": ["x", None]}), [{"a": 1, "b": "x"}, {"a": 2, "b": None}]),
    (pd.DataFrame({"a": [1.0, np.nan]}), [{"a": 1.0}, {"a": None}]),
    (pd.DataFrame({"t": pd.to_datetime(["2024-01-02", None])}),
     [{"t": "2024-01-02T00:00:00"}, {"t": None}]),
    (pd.DataFrame({"n": pd.array([1, None], dtype="Int64")}), [{"n": 1}, {"n": None}]),
    (pd.DataFrame({"a": []}), []),
    (pd.Timestamp("2024-01-02 03:04:05"), "2024-01-02T03:04:05"),
    (pd.Timestamp("2024-01-02", tz="UTC"), "2024-01-02T00:00:00+00:00"),
    (pd.Categorical(["lo", "hi", "lo"]), ["lo", "hi", "lo"]), (pd.NA, None), (pd.NaT, None),
    # Decimal, as a number
    (decimal.Decimal("2.50"), 2.5), (decimal.Decimal("-1E+2"), -100),
    (decimal.Decimal("NaN"), None), (decimal.Decimal("Infinity"), None),
    (decimal.Decimal("-Infinity"), None), (decimal.Decimal("sNaN"), None),
    # dates and times, ISO 8601
    (datetime.datetime(2024, 5, 6, 7, 8, 9), "2024-05-06T07:08:09"),
    (datetime.datetime(2024, 5, 6, 7, 8, 9, 120000), "2024-05-06T07:08:09.120000"),
    (datetime.datetime(2024, 5, 6, tzinfo=datetime.UTC), "2024-05-06T00:00:00Z"),
    (datetime.date(2024, 5, 6), "2024-05-06"), (datetime.time(7, 8, 9), "07:08:09"),
    # collections
    ({3}, [3]), (frozenset([4]), [4]), ((1, "a"), [1, "a"]), ((), []), (((1, (2,)),), [[1, [2]]]),
    # non-finite floats
    (float("nan"), None), (float("inf"), None), (-float("inf"), None),
    ([1.0, float("nan")], [1.0, None]),
    # plain values
    (None, None), (True, True), (2**70, 2**70), ("é", "é"), ({"k": []}, {"k": []}),
])
def test_values_become_json(value, expected):
    assert as_json(value) == expected


def test_decimals_are_written_as_numbers_not_strings():
    assert encode_result(decimal.Decimal("2.50")) == b"2.50"
    assert encode_result([decimal.Decimal("0.1"), decimal.Decimal("NaN")]) == b"[0.1,null]"


def test_sets_keep_every_element():
    assert sorted(as_json({3, 1, 2})) == [1, 2, 3]
    assert sorted(as_json(frozenset("abc"))) == ["a", "b", "c"]


def test_nested_mixes_are_converted_all_the_way_down():
    value = {
        "counts": {"a": np.int64(3)},
        "rows": [pd.DataFrame({"x": [np.nan, 1.5]}), (np.float32(0.5), {np.bool_(False)})],
        "series": pd.Series([decimal.Decimal("1.5"), decimal.Decimal("NaN")]),
        "meta": {"when": datetime.date(2024, 1, 2), "price": decimal.Decimal("9.99"),
                 "matrix": np.array([[np.nan]]), "ok": float("inf")},
        "tags": frozenset(), "text": "NaN and Infinity are fine inside strings",
    }
    assert as_json(value) == {
        "counts": {"a": 3},
        "rows": [[{"x": None}, {"x": 1.5}], [0.5, [False]]],
        "series": [1.5, None],
        "meta": {"when": "2024-01-02", "price": 9.99, "matrix": [[None]], "ok": None},
        "tags": [], "text": "NaN and Infinity are fine inside strings",
    }


@pytest.mark.parametrize("value, type_name", [
    (Opaque(), f"{__name__}.Opaque"),
    ({"model": Opaque()}, f"{__name__}.Opaque"),
    ([1, [2, Opaque()]], f"{__name__}.Opaque"),
    (1j, "builtins.complex"),
    (np.complex128(1j), "builtins.complex"),
    ((x for x in []), "builtins.generator"),
    (object(), "builtins.object"),
])
def test_an_unconvertible_value_raises_naming_its_type(value, type_name):
    with pytest.raises(Unconvertible) as error:
        encode_result(value)
    assert type_name in str(error.value)
