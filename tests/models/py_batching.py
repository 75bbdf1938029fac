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


def held_sizes(values):
    """Notes that a batch started (in $STARTED_FILE), then holds the worker until the file
    $RELEASE_FILE exists, so that calls queue up behind it for as long as the test wants."""
    import os
    import time

    with open(os.environ["STARTED_FILE"], "a") as f:
        f.write(f"{len(values)}\n")
    deadline = time.monotonic() + 60
    while not os.path.exists(os.environ["RELEASE_FILE"]) and time.monotonic() < deadline:
        time.sleep(0.01)
    return [{"value": v, "batch": len(values)} for v in values]
