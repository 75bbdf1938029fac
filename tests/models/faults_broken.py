"""Fails at import: its version can never be served."""

import this_module_does_not_exist  # noqa: F401


def predict(x):
    return x
