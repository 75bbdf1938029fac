"""Functions that misbehave on purpose, for the fault-tolerance tests."""

import os
import time

RECORD = os.environ.get("CALLS_FILE")


def whoami():
    return os.getpid()


def note(tag):
    """Notes a call that really ran (to prove a call that failed in the queue never ran)."""
    if RECORD and tag is not None:
        with open(RECORD, "a") as f:
            f.write(f"{tag}\n")


def slow(seconds, tag=None):
    """Sleeps, and notes each call it really ran."""
    note(tag)
    time.sleep(seconds)
    return os.getpid()


def held(release, tag=None, limit_s=60.0):
    """Notes the call, then keeps its worker busy until the file ``release`` exists (the test
    says when, no guess of a duration); gives up after ``limit_s``."""
    note(tag)
    deadline = time.monotonic() + limit_s
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.01)
    return os.getpid()


def echo(*args, **kwargs):
    return [list(args), kwargs]
