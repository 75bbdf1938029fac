"""The target of bench/hostile.py: takes anything, answers at once."""


def anything(*args, **kwargs):
    return "ok"
