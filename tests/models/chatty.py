"""A model that writes every way user code can: for the worker-log tests."""

import logging
import sys
import warnings

print("loading chatty")  # at load time: no request yet
log = logging.getLogger("chatty")


def talk(word):
    print(f"printed {word}")
    sys.stderr.write(f"to stderr {word}\n")
    log.warning("logged %s", word)
    warnings.warn(f"warned {word}", stacklevel=1)
    if word == "fail":
        raise ValueError(f"failed {word}")
    return word


def flood(n):
    for i in range(n):
        print(f"line {i}")
    return n
