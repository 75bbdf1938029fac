"""Functions served by remote worker pools in the cross-host tests."""

import os
import time


def where(seconds=0):
    """Sleeps `seconds`, then says which process answered."""
    time.sleep(seconds)
    return os.getpid()
