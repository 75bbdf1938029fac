"""Functions for the Open Inference Protocol (/v2) and OpenAPI tests."""


def scale(x, factor=2):
    """Nested lists of numbers, each times ``factor``: a list result of the input's shape."""
    if isinstance(x, list):
        return [scale(v, factor) for v in x]
    return x * factor


def summary(values, label):
    """A dict result: one V2 output per key, of every kind."""
    return {"count": len(values), "mean": sum(values) / len(values),
            "positive": [v > 0 for v in values], "label": label,
            "records": [{"i": i, "v": v} for i, v in enumerate(values)],
            "ragged": [values[:1], values], "missing": [1.5, None]}


def describe(x):
    """What the function was given, to show how shapes become arguments."""
    return {"type": type(x).__name__, "value": x}


def anything(*args, **kwargs):
    """Takes whatever it is given and never fails: fuzzing finds the gateway's errors only."""
    return {"args": list(args), "kwargs": kwargs}


def fail(message):
    raise ValueError(message)


def inspect_array(x, factor=1.0):
    """What a ``tensors: numpy`` version is given: the type, shape, dtype and whether the array
    views the received message (read-only) rather than a copy; and a sum to check the values."""
    import numpy as np

    return {"type": type(x).__name__, "shape": list(np.shape(x)),
            "dtype": str(getattr(x, "dtype", "")),
            "writeable": bool(getattr(getattr(x, "flags", None), "writeable", True)),
            "sum": float(np.sum(x)) * factor}
