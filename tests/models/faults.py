"""Functions that misbehave on purpose, for the fault-tolerance tests."""

import os
import time

RECORD = os.environ.get("CALLS_FILE")


def whoami():
    return os.getpid()


def slow(seconds, tag=None):
    """Sleeps, and notes each call it really ran (to prove a timed-out call was never run)."""
    if RECORD and tag is not None:
        with open(RECORD, "a") as f:
            f.write(f"{tag}\n")
    time.sleep(seconds)
    return os.getpid()


def echo(*args, **kwargs):
    return [list(args), kwargs]
