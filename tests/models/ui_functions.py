"""Functions for the async prediction and web tester tests."""

import os
import time


def double(x):
    return {"doubled": x * 2}


def slow_double(x, seconds=1.0, release=None):
    """Takes ``seconds``: long enough for a restart to catch it queued or running. With
    ``release`` (a file path), it runs until that file exists instead (the test says when)."""
    if release is None:
        time.sleep(seconds)
    else:
        deadline = time.monotonic() + 60
        while not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.01)
    return x * 2


def refuse(x):
    raise ValueError(f"cannot predict from {x!r}")


def greet(name, punctuation="!"):
    return {"greeting": f"Hello, {name}{punctuation}", "length": len(name)}
