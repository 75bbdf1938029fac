"""Allocates ~300 MB at load time (every page touched): the copy-on-write test's model."""

import os

import numpy as np

weights = np.ones(300 * 1024 * 1024 // 8)


def pid():
    return os.getpid()
