"""Functions for the calling-convention, conversion and error tests."""

import datetime
import decimal
import os
import time

import numpy as np
import pandas as pd

LOADS_FILE = os.environ.get("LOADS_FILE")
if LOADS_FILE:  # a record of every run of this script, to count them
    with open(LOADS_FILE, "a") as f:
        f.write(f"{os.getpid()}\n")
loads = 0
loads += 1
calls = 0


def kinds(*values, **named):
    """The Python type of each argument it got."""
    return {"positional": [type(v).__name__ for v in values],
            "named": {k: type(v).__name__ for k, v in named.items()}}


def echo(**fields):
    return fields


def first_and_rest(x, **rest):
    return {"x": x, "rest": rest}


def area(width, height=1):
    return width * height


def total(d):
    """Takes one dict argument."""
    return sum(d.values())


def keyword_only(a, *, scale):
    return a * scale


def positional_only(a, /, b):
    return [a, b]


def result(kind):
    """Values users trip over elsewhere, by name."""
    return {
        "np_int": np.int64(7), "np_float": np.float32(1.5), "np_bool": np.bool_(True),
        "np_array": np.array([[1, 2], [3, 4]]), "np_nan": np.array([1.0, np.nan]),
        "series": pd.Series([1, 2, None]),
        "frame": pd.DataFrame({"a": [1, 2], "b": ["x", None]}),
        "timestamps": pd.DataFrame({"t": pd.to_datetime(["2024-01-02"])}),
        "decimal": decimal.Decimal("2.50"), "datetime": datetime.datetime(2024, 5, 6, 7, 8, 9),
        "date": datetime.date(2024, 5, 6), "set": {3}, "tuple": (1, "a"),
        "nan": float("nan"), "inf": float("inf"), "ninf": -float("inf"),
        "nested": {"a": [np.int32(1), {"b": np.float64(0.5)}]},
        "np_f32_array": np.array([0.5, np.nan, np.inf], dtype=np.float32),
        "np_2d_nan": np.array([[1.0, np.nan], [-np.inf, 2.0]]),
        "frame_nan": pd.DataFrame({"a": [1.0, np.nan], "t": pd.to_datetime(["2024-01-02",
                                                                            None])}),
        "timestamp": pd.Timestamp("2024-01-02 03:04:05"),
        "aware": datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.UTC),
        "frozenset": frozenset(["z"]), "decimal_nan": decimal.Decimal("NaN"),
        "decimal_inf": [decimal.Decimal("Infinity"), decimal.Decimal("-Infinity")],
        "mixed": {"n": np.int64(1), "when": datetime.date(2024, 1, 2), "tags": ("a",),
                  "rows": pd.DataFrame({"x": [np.nan]}), "price": decimal.Decimal("9.99")},
        "object": object(),
        "complex": 1j,
    }[kind]


def fail(message):
    raise ValueError(message)


def exit_now():
    os._exit(1)


def fail_or_pid(crash=False):
    """Raises when asked, else says which process answered."""
    if crash:
        raise RuntimeError("asked to fail")
    return os.getpid()


def exit_or_pid(crash=False):
    """Ends its process abruptly when asked, else says which process answered."""
    if crash:
        os._exit(1)
    return os.getpid()


def whoami(hold=0.0):
    """Which process answered, how often this script ran in it, its calls and directory;
    ``hold`` keeps the call busy that many seconds, so concurrent calls spread over workers."""
    global calls
    calls += 1
    time.sleep(hold)
    return {"pid": os.getpid(), "loads": loads, "calls": calls, "cwd": os.getcwd()}


def environment_names():
    return sorted(os.environ)


def positional_only_and_rest(a, /, **rest):
    return [a, rest]


def environment(name):
    return os.environ.get(name)


def plus_one(x):
    return x + 1


def pid():
    """The answering process, and nothing else: no sleep, no file (see test_busy_poll)."""
    return os.getpid()
