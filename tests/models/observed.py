"""Functions for the metrics and catalogue tests: a sum that can take its time, a function that
raises, a call the test holds until it releases it, and the worker's pid."""

import os
import time


def add(a, b, nap=0.0):
    time.sleep(nap)
    return a + b


def boom(nap=0.05):
    time.sleep(nap)  # it runs a while before it fails: that time is model time too
    raise ValueError("boom, on purpose")


def hold(release_file, limit_s=20.0):
    """Returns once ``release_file`` exists (or after ``limit_s``): the test decides when the
    calls it holds finish, so what it observes meanwhile does not depend on timing."""
    deadline = time.monotonic() + limit_s
    while not os.path.exists(release_file) and time.monotonic() < deadline:
        time.sleep(0.005)
    return os.getpid()


def whoami():
    return os.getpid()
