"""JSON values to R objects and back, through rpy2's low-level ``rinterface`` layer.

JSON -> R (SPEC §3): object -> named list; array of scalars of one kind -> atomic vector of
that type (ints -> integer, ints and reals -> numeric, strings -> character, booleans ->
logical), with null -> NA of the vector's type; any other array -> list; null -> NA; an empty
array -> ``list()``. Integers beyond R's 32-bit range become numeric.

R -> JSON: length-1 atomic vectors -> scalars, other lengths -> arrays, NA/NaN/Inf -> null,
factors -> their labels, named lists -> objects, unnamed lists -> arrays, data frames -> a list
of row records, matrices -> a list of rows, NULL -> null. Anything else (functions,
environments, ...) is refused with its R class named.
"""

from __future__ import annotations

import math
from typing import Any

import rpy2.rinterface as ri

_INT_MIN, _INT_MAX = -(2**31) + 1, 2**31 - 1  # -2^31 itself is NA_integer_


class RUnconvertible(TypeError):
    pass


# ---------------------------------------------------------------- JSON -> R


def to_r(value: Any) -> Any:
    if value is None:
        return ri.BoolSexpVector([ri.NA_Logical])
    if isinstance(value, bool):
        return ri.BoolSexpVector([value])
    if isinstance(value, int):
        return _ints([value])
    if isinstance(value, float):
        return ri.FloatSexpVector([value])
    if isinstance(value, str):
        return ri.StrSexpVector([value])
    if isinstance(value, dict):
        return named_list(value)
    if isinstance(value, list):
        return _array(value)
    raise RUnconvertible(f"cannot pass a {type(value).__name__} to R")


def named_list(values: dict[str, Any]) -> Any:
    result = ri.ListSexpVector([to_r(v) for v in values.values()])
    result.names = ri.StrSexpVector(list(values))
    return result


def _ints(values: list[Any]) -> Any:
    if all(v is None or _INT_MIN <= v <= _INT_MAX for v in values):
        return ri.IntSexpVector([ri.NA_Integer if v is None else v for v in values])
    return ri.FloatSexpVector([ri.NA_Real if v is None else float(v) for v in values])


def _array(values: list[Any]) -> Any:
    kinds = {type(v) for v in values if v is not None}
    if not values or not kinds <= {bool, int, float, str}:
        return ri.ListSexpVector([to_r(v) for v in values])
    if kinds == {bool} or not kinds:
        return ri.BoolSexpVector([ri.NA_Logical if v is None else v for v in values])
    if kinds == {int}:
        return _ints(values)
    if kinds <= {int, float}:
        return ri.FloatSexpVector([ri.NA_Real if v is None else float(v) for v in values])
    if kinds == {str}:
        return ri.StrSexpVector([ri.NA_Character if v is None else v for v in values])
    return ri.ListSexpVector([to_r(v) for v in values])  # mixed kinds


# ---------------------------------------------------------------- R -> JSON


def _real(v: float) -> float | None:
    return v if math.isfinite(v) else None  # NA, NaN and +-Inf have no JSON number


def _elements(x: Any) -> list[Any]:
    """The elements of an atomic vector as Python values, NA as None."""
    kind = x.typeof
    if kind == ri.RTYPES.REALSXP:
        return [_real(v) for v in x]
    if kind == ri.RTYPES.INTSXP:
        na = ri.NA_Integer
        return [None if v is na or v == na else v for v in x]
    if kind == ri.RTYPES.LGLSXP:
        return [None if v is ri.NA_Logical or v == ri.NA_Logical else bool(v) for v in x]
    if kind == ri.RTYPES.STRSXP:
        return [None if v is ri.NA_Character else str(v) for v in x]
    raise RUnconvertible(_describe(x, ()))


def _attributes(x: Any) -> frozenset[str]:
    """The names of x's attributes, read once (``rclass``/``names`` cost ~10-20 us each)."""
    return frozenset(x.list_attrs())


def from_r(x: Any) -> Any:
    """A JSON-encodable Python value for the R object ``x``."""
    kind = x.typeof
    if kind == ri.RTYPES.NILSXP:
        return None
    attributes = _attributes(x)
    classes = tuple(x.do_slot("class")) if "class" in attributes else ()
    if "factor" in classes:
        labels = _labels(x)
        return labels[0] if len(labels) == 1 else labels
    if "data.frame" in classes:
        names = [str(n) for n in x.do_slot("names")]
        columns = [_column(x[i]) for i in range(len(x))]
        return [dict(zip(names, row)) for row in zip(*columns)]
    if kind == ri.RTYPES.VECSXP:
        items = [from_r(x[i]) for i in range(len(x))]
        if "names" in attributes:
            return dict(zip((str(n) for n in x.do_slot("names")), items))
        return items
    if kind in (ri.RTYPES.REALSXP, ri.RTYPES.INTSXP, ri.RTYPES.LGLSXP, ri.RTYPES.STRSXP):
        values = _elements(x)
        if "dim" in attributes:
            dim = x.do_slot("dim")
            if len(dim) == 2:
                rows, cols = dim[0], dim[1]
                return [[values[i + rows * j] for j in range(cols)] for i in range(rows)]
        return values[0] if len(values) == 1 else values
    raise RUnconvertible(_describe(x, classes))


def _labels(factor: Any) -> list[Any]:
    levels = [str(level) for level in factor.do_slot("levels")]
    return [None if code is None else levels[code - 1] for code in _elements(factor)]


def _column(x: Any) -> list[Any]:
    """A data frame column as a list (a one-row frame still gives a list)."""
    attributes = _attributes(x)
    if "class" in attributes and "factor" in tuple(x.do_slot("class")):
        return _labels(x)
    if x.typeof == ri.RTYPES.VECSXP:
        return [from_r(x[i]) for i in range(len(x))]
    return _elements(x)


def _describe(x: Any, classes: tuple[str, ...]) -> str:
    return f"an R object of class {'/'.join(classes) or x.typeof.name}"
