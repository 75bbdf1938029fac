"""Tokens: Bearer and Basic, 401/403, environment-held tokens, and no token in any output."""

import base64

import pytest

from conftest import TEST_MODELS, start_gateway, token_sha256, version

SCRIPT = TEST_MODELS / "py_calls.py"
TOKENS = {"ci-bot": "ci-secret-token-1", "other": "other-secret-token-2",
          "from-env": "env-held-token-3"}




CONFIG = {
    "tokens": {"ci-bot": {"sha256": token_sha256(TOKENS["ci-bot"])},
               "other": {"sha256": token_sha256(TOKENS["other"])},
               "from-env": {"env": "MODELGATE_TEST_TOKEN"}},
    "models": {
        "secret": {"access": {"public": False, "tokens": ["ci-bot", "from-env"]},
                   "versions": {1: version(SCRIPT, "area")}},
        "open": {"access": {"public": True}, "versions": {1: version(SCRIPT, "area")}}},
}
ENV = {"MODELGATE_TEST_TOKEN": TOKENS["from-env"]}


@pytest.fixture(scope="module")
async def gw(tmp_path_factory):
    running = await start_gateway(tmp_path_factory.mktemp("auth"), CONFIG, env=ENV)
    yield running
    await running.stop()


async def status_of(http, gw, model, headers=None):
    async with http.post(gw.model_url(model), json={"parameters": [2]},
                         headers=headers or {}) as resp:
        return resp.status, await resp.json(), resp.headers


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_no_token_is_401_with_a_challenge(gw, http):
    status, body, headers = await status_of(http, gw, "secret")
    assert status == 401 and body["error"]["type"] == "unauthorized"
    assert "Bearer" in headers["WWW-Authenticate"]


async def test_a_wrong_token_is_401(gw, http):
    status, body, _ = await status_of(http, gw, "secret", {"Authorization": "Bearer nope"})
    assert status == 401 and body["error"]["type"] == "unauthorized"


async def test_a_valid_token_not_allowed_for_the_model_is_403(gw, http):
    status, body, _ = await status_of(http, gw, "secret",
                                      {"Authorization": f"Bearer {TOKENS['other']}"})
    assert status == 403 and body["error"]["type"] == "forbidden"
    assert "other" in body["error"]["message"]


async def test_bearer_basic_and_environment_tokens_are_accepted(gw, http):
    for headers in ({"Authorization": f"Bearer {TOKENS['ci-bot']}"},
                    basic(TOKENS["ci-bot"], TOKENS["ci-bot"]),
                    {"Authorization": f"Bearer {TOKENS['from-env']}"}):
        status, body, _ = await status_of(http, gw, "secret", headers)
        assert (status, body["result"]) == (200, 2)


async def test_a_public_model_needs_no_token(gw, http):
    assert (await status_of(http, gw, "open"))[0] == 200


async def test_no_token_ever_reaches_the_output(gateway_factory, http):
    """A gateway of its own: stopping it (to read all it wrote) leaves the module's alone."""
    gw = await gateway_factory(CONFIG, env=ENV)
    for token in TOKENS.values():
        await status_of(http, gw, "secret", {"Authorization": f"Bearer {token}"})
        await status_of(http, gw, "secret", basic(token, token))
    assert await gw.stop() == 0
    output = b"".join(gw.raw_output)
    assert len(gw.events("request")) == 2 * len(TOKENS)  # the request lines were written
    for token in TOKENS.values():
        assert token.encode() not in output
