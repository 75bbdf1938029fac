"""JSON values to R objects and back, on R's C API through rpy2's cffi binding (``rlib``).

rpy2's ``rinterface`` wraps every R object it hands to Python in a tracked, preserved
``Sexp`` (5-8 us each); a call that converted its arguments and result through those wrappers
spent most of its time there. Here values are built and read as raw ``SEXP`` pointers, with
the same primitives rinterface itself uses, and no Python wrapper is made on the hot path.

Memory rules (R's garbage collector runs on any allocation): :func:`to_r` returns an
*unprotected* new object, which the caller must protect or store in a protected object before it
allocates again; every builder here protects what it is filling and unprotects in ``finally``,
so an exception never leaves R's protect stack unbalanced. :func:`from_r` only reads. Inputs
that would make R raise an error inside a bare C call (a longjmp straight through Python) are
refused before R sees them: strings with NUL, empty or over-long argument names.

JSON -> R (SPEC §3): object -> named list; array of scalars of one kind -> atomic vector of that
type (ints -> integer, ints and reals -> numeric, strings -> character, booleans -> logical),
null inside it -> NA of the vector's type; any other array (mixed kinds, nested) -> list;
``[]`` -> ``list()`` (as jsonlite); null -> NA (logical); integers outside R's 32-bit range
(and -2^31, which is ``NA_integer_``) -> numeric.

R -> JSON: length-1 atomic vectors -> scalars, other lengths (0 too) -> arrays; named atomic
vectors of length > 1 -> objects; NA, NaN and +-Inf -> null; factors -> their labels;
``Date`` -> "YYYY-MM-DD", ``POSIXct`` -> ISO 8601 UTC; named lists -> objects (duplicate names:
the last wins), unnamed lists -> arrays; data frames -> a list of row records; matrices and
arrays -> nested lists, row-major; NULL -> null. Anything else (functions, environments,
calls, S4 objects, complex, raw) -> :class:`RUnconvertible` naming its R class.
"""

from __future__ import annotations

import datetime
import math
from array import array
from typing import Any

from rpy2.rinterface_lib import openrlib

from workers.wire import MAX_NESTING

lib = openrlib.rlib
ffi = openrlib.ffi

INT_MIN = -(2**31) + 1  # -2^31 is NA_integer_
INT_MAX = 2**31 - 1
MAX_NAME_BYTES = 10_000  # Rf_install() errors beyond this
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_IMPLICIT_CLASS = {  # what class() says of objects without a class attribute
    lib.CLOSXP: "function", lib.BUILTINSXP: "function", lib.SPECIALSXP: "function",
    lib.ENVSXP: "environment", lib.LANGSXP: "call", lib.SYMSXP: "name",
    lib.EXTPTRSXP: "externalptr", lib.S4SXP: "S4", lib.CPLXSXP: "complex", lib.RAWSXP: "raw",
    lib.EXPRSXP: "expression", lib.LISTSXP: "pairlist", lib.WEAKREFSXP: "weakref",
    lib.REALSXP: "numeric", lib.INTSXP: "integer", lib.LGLSXP: "logical",
    lib.STRSXP: "character", lib.VECSXP: "list", lib.NILSXP: "NULL",
}


class RUnconvertible(TypeError):
    """A value with no counterpart on the other side; the message says which."""


class _R:
    """R's constants, read once R is running (see :func:`bind`)."""

    nil: Any
    na_string: Any
    na_int: int
    na_real: float
    names: Any
    dim: Any
    klass: Any
    levels: Any
    dimnames: Any


def bind() -> None:
    """Read R's constants; called by the runner right after R starts."""
    _R.nil = lib.R_NilValue
    _R.na_string = lib.R_NaString
    _R.na_int = lib.R_NaInt
    _R.na_real = lib.R_NaReal
    _R.names = lib.Rf_install(b"names")
    _R.dim = lib.R_DimSymbol
    _R.klass = lib.R_ClassSymbol
    _R.levels = lib.Rf_install(b"levels")
    _R.dimnames = lib.Rf_install(b"dimnames")


# ---------------------------------------------------------------- JSON -> R


def to_r(value: Any, depth: int = 0) -> Any:
    """A new, unprotected R object for a decoded JSON value. Arrays and objects nested more
    than ``MAX_NESTING`` levels are refused (:class:`RUnconvertible`), as for Python."""
    kind = type(value)
    if kind is float:
        return lib.Rf_ScalarReal(value)
    if kind is int:
        if INT_MIN <= value <= INT_MAX:
            return lib.Rf_ScalarInteger(value)
        return lib.Rf_ScalarReal(_as_float(value))
    if kind is str:
        return _strings([value])
    if kind is bool:
        return lib.Rf_ScalarLogical(1 if value else 0)
    if value is None:
        return lib.Rf_ScalarLogical(_R.na_int)
    if kind is list or kind is dict:
        if depth >= MAX_NESTING:
            raise RUnconvertible(f"a value nested more than {MAX_NESTING} levels deep")
        return _array(value, depth + 1) if kind is list else _named_list(value, depth + 1)
    raise RUnconvertible(f"cannot pass a {kind.__name__} to R")


def _array(values: list[Any], depth: int) -> Any:
    kinds = set(map(type, values))
    has_null = type(None) in kinds
    kinds.discard(type(None))
    if not values or not kinds <= {int, float, str, bool} or (len(kinds) > 1 and not (
            kinds <= {int, float})):
        return _list(values, depth)
    if not kinds or kinds == {bool}:  # all null: NA is logical in R
        return _numbers(lib.LGLSXP, [_R.na_int if v is None else v for v in values], "i")
    if kinds == {str}:
        return _strings(values)
    present = [v for v in values if v is not None] if has_null else values
    if kinds == {int} and min(present) >= INT_MIN and max(present) <= INT_MAX:
        return _numbers(lib.INTSXP, [_R.na_int if v is None else v for v in values]
                        if has_null else values, "i")
    return _numbers(lib.REALSXP, [_R.na_real if v is None else v for v in values]
                    if has_null else values, "d")


def _as_float(value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        raise RUnconvertible(f"the number {value} is too large for R") from None


def _numbers(r_type: int, values: list[Any], code: str) -> Any:
    try:
        packed = array(code, values)
    except OverflowError:
        raise RUnconvertible("a number in an array is too large for R") from None
    vector = lib.Rf_allocVector(r_type, len(values))
    if values:  # no allocation below: no need to protect
        data = lib.REAL(vector) if code == "d" else (
            lib.INTEGER(vector) if r_type == lib.INTSXP else lib.LOGICAL(vector))
        ffi.memmove(data, packed, len(values) * packed.itemsize)
    return vector


def _charsxp(text: str) -> Any:
    data = text.encode("utf-8", "surrogatepass")
    if b"\0" in data:
        raise RUnconvertible("R strings cannot contain the NUL character")
    return lib.Rf_mkCharLenCE(data, len(data), lib.CE_UTF8)


def _strings(values: list[Any]) -> Any:
    vector = lib.Rf_protect(lib.Rf_allocVector(lib.STRSXP, len(values)))
    try:
        for i, text in enumerate(values):
            lib.SET_STRING_ELT(vector, i, _R.na_string if text is None else _charsxp(text))
    finally:
        lib.Rf_unprotect(1)
    return vector


def _list(values: list[Any], depth: int) -> Any:
    vector = lib.Rf_protect(lib.Rf_allocVector(lib.VECSXP, len(values)))
    try:
        for i, item in enumerate(values):
            lib.SET_VECTOR_ELT(vector, i, to_r(item, depth))
    finally:
        lib.Rf_unprotect(1)
    return vector


def _named_list(values: dict[str, Any], depth: int) -> Any:
    vector = lib.Rf_protect(_list(list(values.values()), depth))
    try:
        names = lib.Rf_protect(_strings(list(values)))
        lib.Rf_setAttrib(vector, _R.names, names)
        lib.Rf_unprotect(1)
    finally:
        lib.Rf_unprotect(1)
    return vector


def symbol(name: str) -> Any:
    """The R symbol for an argument name (symbols are never collected)."""
    data = name.encode("utf-8", "surrogatepass")
    if not data or len(data) > MAX_NAME_BYTES or b"\0" in data:
        raise RUnconvertible(f"{name[:40]!r} cannot be an R argument name")
    return lib.Rf_install(data)


# ---------------------------------------------------------------- R -> JSON


def from_r(x: Any, depth: int = 0) -> Any:
    """A JSON-encodable Python value for the R object ``x`` (which the caller keeps protected).
    Lists nested more than ``MAX_NESTING`` levels are :class:`RUnconvertible`."""
    kind = x.sxpinfo.type
    if kind == lib.NILSXP:
        return None
    plain = lib.ATTRIB(x) == _R.nil
    if kind in _ATOMIC:
        values = _elements(x, kind, plain)
        if plain:
            return values[0] if len(values) == 1 else values
        return _shaped(x, values)
    if kind == lib.VECSXP:
        if depth >= MAX_NESTING:
            raise RUnconvertible(f"a list nested more than {MAX_NESTING} levels deep")
        if not plain and _inherits(x, b"data.frame"):
            return _records(x, depth + 1)
        items = [from_r(lib.VECTOR_ELT(x, i), depth + 1) for i in range(lib.Rf_xlength(x))]
        names = None if plain else _names(x)
        return items if names is None else dict(zip(names, items))
    raise RUnconvertible(f"an R object of class {r_class(x)}")


def from_r_elements(x: Any, depth: int = 0) -> list[Any]:
    """One value per element of ``x`` (a row for a data frame): a batched function's results."""
    kind = x.sxpinfo.type
    if kind == lib.VECSXP:
        if depth >= MAX_NESTING:
            raise RUnconvertible(f"a list nested more than {MAX_NESTING} levels deep")
        if _inherits(x, b"data.frame"):
            return list(_records(x, depth + 1))
        return [from_r(lib.VECTOR_ELT(x, i), depth + 1) for i in range(lib.Rf_xlength(x))]
    if kind in _ATOMIC:
        plain = lib.ATTRIB(x) == _R.nil
        values = _elements(x, kind, plain)
        if not plain and lib.Rf_getAttrib(x, _R.dim) != _R.nil:
            shaped = _shaped(x, values)
            return shaped if isinstance(shaped, list) else [shaped]
        return values
    return [from_r(x)]


_ATOMIC = frozenset((lib.REALSXP, lib.INTSXP, lib.LGLSXP, lib.STRSXP))


def _elements(x: Any, kind: int, plain: bool) -> list[Any]:
    """The elements of an atomic vector as Python values: NA, NaN, Inf -> None, factor codes
    -> labels, dates -> ISO 8601 strings."""
    n = lib.Rf_xlength(x)
    if kind == lib.REALSXP:
        values = ffi.unpack(lib.REAL(x), n)
        if not all(map(math.isfinite, values)):
            values = [v if math.isfinite(v) else None for v in values]
        if not plain and lib.Rf_getAttrib(x, _R.klass) != _R.nil:
            if _inherits(x, b"Date"):
                return [None if v is None else (_EPOCH + datetime.timedelta(days=v)).date()
                        .isoformat() for v in values]
            if _inherits(x, b"POSIXct"):
                return [None if v is None else (_EPOCH + datetime.timedelta(seconds=v))
                        .isoformat().replace("+00:00", "Z") for v in values]
        return values
    if kind == lib.STRSXP:
        return [_text(lib.STRING_ELT(x, i)) for i in range(n)]
    values = ffi.unpack(lib.INTEGER(x) if kind == lib.INTSXP else lib.LOGICAL(x), n)
    na = _R.na_int
    if kind == lib.LGLSXP:
        return [None if v == na else v != 0 for v in values]
    if not plain and _inherits(x, b"factor"):
        levels = _strings_of(lib.Rf_getAttrib(x, _R.levels))
        return [None if v == na else levels[v - 1] for v in values]
    return [None if v == na else v for v in values] if na in values else values


def _text(charsxp: Any) -> str | None:
    if charsxp == _R.na_string:
        return None
    data = ffi.string(lib.R_CHAR(charsxp))
    if lib.Rf_getCharCE(charsxp) == lib.CE_LATIN1:
        return data.decode("latin-1")
    return data.decode("utf-8", "replace")  # UTF-8, or native (the workers' locale is UTF-8)


def _strings_of(x: Any) -> list[Any]:
    if x.sxpinfo.type != lib.STRSXP:
        return []
    return [_text(lib.STRING_ELT(x, i)) for i in range(lib.Rf_xlength(x))]


def _names(x: Any) -> list[Any] | None:
    """``names(x)`` when it has any non-empty name, NA as "NA"; else None."""
    names = _strings_of(lib.Rf_getAttrib(x, _R.names))
    if not any(names):
        return None
    return ["NA" if n is None else n for n in names]


def _shaped(x: Any, values: list[Any]) -> Any:
    """An atomic vector with attributes: a matrix/array, a named vector, or plain."""
    dim = lib.Rf_getAttrib(x, _R.dim)
    if dim != _R.nil and dim.sxpinfo.type == lib.INTSXP and lib.Rf_xlength(dim) > 1:
        return _nested(values, ffi.unpack(lib.INTEGER(dim), lib.Rf_xlength(dim)))
    if len(values) > 1:
        names = _names(x) if dim == _R.nil else _dimnames_1d(x)
        if names is not None:
            return dict(zip(names, values))
    return values[0] if len(values) == 1 else values


def _dimnames_1d(x: Any) -> list[Any] | None:
    """A 1-d array (``table()``) is named by its only dimnames."""
    dimnames = lib.Rf_getAttrib(x, _R.dimnames)
    if dimnames == _R.nil or lib.Rf_xlength(dimnames) != 1:
        return None
    names = _strings_of(lib.VECTOR_ELT(dimnames, 0))
    return ["NA" if n is None else n for n in names] if any(names) else None


def _nested(values: list[Any], dims: list[int]) -> list[Any]:
    """Column-major ``values`` of dimensions ``dims`` as nested lists, the first index
    outermost (a matrix becomes its list of rows): ``x[i, j, k]`` is
    ``values[i + d0*j + d0*d1*k]``."""
    def level(depth: int, offset: int, stride: int) -> Any:
        if depth == len(dims):
            return values[offset]
        return [level(depth + 1, offset + stride * k, stride * dims[depth])
                for k in range(dims[depth])]

    return level(0, 0, 1)  # type: ignore[no-any-return]


def _records(frame: Any, depth: int) -> list[dict[str, Any]]:
    names = _names(frame) or []
    columns = [_column(lib.VECTOR_ELT(frame, i), depth) for i in range(lib.Rf_xlength(frame))]
    return [dict(zip(names, row)) for row in zip(*columns)]


def _column(x: Any, depth: int) -> list[Any]:
    """A data frame column as a list (a one-row frame still gives a list)."""
    kind = x.sxpinfo.type
    if kind in _ATOMIC:
        return _elements(x, kind, lib.ATTRIB(x) == _R.nil)
    if kind == lib.VECSXP:
        return from_r_elements(x, depth)
    raise RUnconvertible(f"a data frame column of class {r_class(x)}")


def _inherits(x: Any, name: bytes) -> bool:
    klass = lib.Rf_getAttrib(x, _R.klass)
    if klass == _R.nil:
        return False
    return any(ffi.string(lib.R_CHAR(lib.STRING_ELT(klass, i))) == name
               for i in range(lib.Rf_xlength(klass)))


def r_class(x: Any) -> str:
    """What R's ``class(x)`` says, without calling R."""
    klass = lib.Rf_getAttrib(x, _R.klass) if lib.ATTRIB(x) != _R.nil else _R.nil
    if klass != _R.nil:
        return "/".join(str(c) for c in _strings_of(klass))
    return _IMPLICIT_CLASS.get(x.sxpinfo.type, f"(R type {x.sxpinfo.type})")
