"""Python functions for the hardening tests (issue 15): what a model's own code can reach."""

import os


def take(x):
    return os.getpid()


def nest(depth):
    value = [1]
    for _ in range(depth):
        value = [value]
    return value


def whoami():
    return os.getpid()


def uid():
    return {"uid": os.getuid(), "gid": os.getgid()}


def read_file(path):
    """What the worker can read of ``path`` (None: nothing)."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError as exc:
        return {"error": type(exc).__name__}


def environment():
    return dict(os.environ)
