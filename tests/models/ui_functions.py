"""Functions for the async prediction and web tester tests."""

import time


def double(x):
    return {"doubled": x * 2}


def slow_double(x, seconds=1.0):
    """Takes ``seconds``: long enough for a restart to catch it queued or running."""
    time.sleep(seconds)
    return x * 2


def refuse(x):
    raise ValueError(f"cannot predict from {x!r}")


def greet(name, punctuation="!"):
    return {"greeting": f"Hello, {name}{punctuation}", "length": len(name)}
