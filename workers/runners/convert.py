"""Python results to JSON, including the values users trip over elsewhere.

msgspec already encodes dicts, lists, tuples, sets, ``datetime``/``date`` (ISO 8601),
``Decimal`` (as a number here) and NaN/Inf floats (as ``null``; non-finite Decimals too, by
:func:`encode_result`). :func:`to_json_value` is its
``enc_hook`` for the rest: NumPy scalars and arrays, pandas objects, and anything array-like.
NumPy and pandas are never imported here: they are used only if the user's script loaded them.
"""

from __future__ import annotations

import datetime
import decimal
import math
import sys
from collections.abc import Mapping
from typing import Any

import msgspec


class Unconvertible(TypeError):
    """A result value that has no JSON form; the message names its type."""


def to_json_value(obj: Any) -> Any:
    """Return a JSON-encodable stand-in for ``obj``, or raise :class:`Unconvertible`."""
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(obj, np.generic):  # np.int64, np.float32, np.bool_, np.str_, ...
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    pd = sys.modules.get("pandas")
    if pd is not None:
        if isinstance(obj, pd.DataFrame):
            return obj.to_dict(orient="records")
        if isinstance(obj, (pd.Series, pd.Index, pd.Categorical)):
            return obj.tolist()
        if obj is pd.NA or obj is pd.NaT:
            return None
    if isinstance(obj, Mapping):
        return dict(obj)
    if hasattr(obj, "tolist"):  # array-likes of other libraries (e.g. torch tensors)
        return obj.tolist()
    # Subclasses of standard types, which msgspec does not take as they are (pandas.Timestamp,
    # IntEnum, ...): their standard form.
    if isinstance(obj, (datetime.date, datetime.time)):
        return obj.isoformat()
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    kind = type(obj)
    raise Unconvertible(f"{kind.__module__}.{kind.__qualname__}")


_encoder = msgspec.json.Encoder(enc_hook=to_json_value, decimal_format="number")


def encode_result(value: Any) -> bytes:
    """JSON bytes of a function's result; raises :class:`Unconvertible` naming the bad type.

    A non-finite ``Decimal`` becomes ``null`` whatever msgspec release is installed: older ones
    write it as the bare word ``NaN``/``Infinity`` (not JSON), 0.23 refuses to encode it. Both
    fall back to a slower pass that replaces such values first; finite results never take it.
    """
    try:
        encoded = _encoder.encode(value)
    except Unconvertible:
        raise
    except RecursionError:
        raise Unconvertible("a value nested too deeply") from None
    except (TypeError, ValueError, OverflowError) as exc:
        return _encode_without_nonfinite_decimals(value, exc)
    if b"NaN" in encoded or b"Infinity" in encoded:  # rare: a non-finite Decimal, maybe
        return _encode_without_nonfinite_decimals(value, None)
    return encoded


def _encode_without_nonfinite_decimals(value: Any, first_error: Exception | None) -> bytes:
    try:
        plain = msgspec.to_builtins(value, enc_hook=to_json_value,
                                    builtin_types=(decimal.Decimal,))
        return _encoder.encode(_finite_numbers(plain))
    except Unconvertible:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise Unconvertible(str(first_error or exc)) from exc


def _finite_numbers(value: Any) -> Any:
    """``value`` (plain containers) with every NaN/Infinity, Decimal or float, as None."""
    if isinstance(value, decimal.Decimal):
        return value if value.is_finite() else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_numbers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_numbers(v) for v in value]
    return value
