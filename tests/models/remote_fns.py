"""Functions served by remote worker pools in the cross-host tests."""

import os
import time


def where(seconds=0, tag=None, record=None):
    """Notes ``tag`` in the file ``record`` when it starts (so that a test knows the call is
    running), sleeps ``seconds``, then says which process answered."""
    if tag is not None and record is not None:
        with open(record, "a") as f:
            f.write(f"{tag}\n")
    time.sleep(seconds)
    return os.getpid()
