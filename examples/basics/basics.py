"""Tiny functions for overhead measurements and for the tests of the calling convention."""


def add(*numbers):
    """Sum of the positional parameters: {"parameters": [1, 2, 3]} -> 6."""
    return sum(numbers)


def echo(**fields):
    """Returns the named arguments it got: {"data": {"x": 1}} -> {"x": 1}."""
    return fields
