"""What errors must not show (issue 15, L1 and L2): a signature's default values, and a
traceback for a version number too long for int()."""

import pytest

from gateway.errors import NotFound
from workers.errors import BadArguments
from workers.runners.arguments import ArgumentCheck


def predict(features, api_key="sk-live-123456", *, endpoint: str = "postgres://u:pw@db/x"):
    return features


def test_a_wrong_call_names_the_parameters_but_never_their_defaults():
    with pytest.raises(BadArguments) as error:
        ArgumentCheck(predict, "predict").check_positional([1, 2, 3])
    message = str(error.value)
    assert message.startswith("predict(features, api_key, *, endpoint) takes at most 2")
    assert "sk-live" not in message and "pw@" not in message and "str" not in message


def test_a_version_number_of_thousands_of_digits_is_not_found():
    from gateway.serving.routing import ModelRoutes

    routes = ModelRoutes("m", None, True, frozenset(), {}, frozenset(), 1, 1)  # type: ignore
    with pytest.raises(NotFound, match=r"has no version 1{18}\.\.\.;") as error:
        routes.pick("1" * 5000)
    assert len(error.value.message) < 200
    with pytest.raises(NotFound, match="has no version 7;"):
        routes.pick("7")
