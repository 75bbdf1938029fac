"""Batched functions for the batching tests: every argument is a list across the batch."""


def sizes(values):
    """Each input's value, paired with the size of the batch it came in."""
    return [{"value": v, "batch": len(values)} for v in values]


def scaled(x, factor=None):
    """Named arguments: x and factor are lists across the batch."""
    factors = factor if factor is not None else [1] * len(x)
    return [a * b for a, b in zip(x, factors)]


def short(values):
    """Wrong on purpose: one result too few."""
    return values[:-1]


def slow_sizes(values):
    """Takes a while, so that calls queue up behind it."""
    import time

    time.sleep(0.3)
    return [{"value": v, "batch": len(values)} for v in values]
