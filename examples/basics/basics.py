"""Tiny functions for overhead measurements and for the tests of the calling convention."""


def add(*numbers):
    """Sum of the positional parameters: {"parameters": [1, 2, 3]} -> 6."""
    return sum(numbers)


def echo(**fields):
    """Returns the named arguments it got: {"data": {"x": 1}} -> {"x": 1}."""
    return fields


def add_batch(*columns):
    """Batched `add`: each argument is the list of that position's values across the batch,
    so the sum of each call is the sum across one row of the columns."""
    return [sum(row) for row in zip(*columns)]
