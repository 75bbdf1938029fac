"""The model catalogue, GET /models and GET /models/{model} (SPEC §7), from a real gateway: what
each token may see, the errors of one model's page (those a call would get), and per version
the fields a client relies on, checked against what calling the listed URLs answers."""

import base64
import hashlib

import msgspec
import pytest

from conftest import TEST_MODELS, start_gateway, version
from gateway.web.routes.catalogue import Catalogue, CatalogueModel

SCRIPT = TEST_MODELS / "observed.py"
ANALYST = "catalogue-analyst-token-1"
OTHER = "catalogue-other-token-2"

pytestmark = pytest.mark.timeout(90)


def digest(token):
    return {"sha256": hashlib.sha256(token.encode()).hexdigest()}


@pytest.fixture(scope="module")
async def gw(tmp_path_factory):
    running = await start_gateway(tmp_path_factory.mktemp("catalogue"), {
        "tokens": {"analyst": digest(ANALYST), "other": digest(OTHER)},
        "models": {
            "open": {"description": "Adds two numbers", "access": {"public": True},
                     "versions": {1: version(SCRIPT, "add"),
                                  2: version(SCRIPT, "add", unpublished=True),
                                  3: version(SCRIPT, "whoami")}},
            "private": {"description": "Only for the analyst",
                        "access": {"tokens": ["analyst"]},
                        "routing": "advanced", "promoted": 1,
                        "versions": {1: version(SCRIPT, "add", workers=2),
                                     2: version(SCRIPT, "whoami")}},
            "theirs": {"access": {"tokens": ["other"]},
                       "versions": {1: version(SCRIPT, "add")}},
        },
    })
    yield running
    await running.stop()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


async def get(http, gw, path, headers=None):
    async with http.get(f"{gw.url}{path}", headers=headers or {}) as resp:
        return resp.status, await resp.read(), resp.headers


async def catalogue(http, gw, headers=None):
    status, body, response_headers = await get(http, gw, "/models", headers)
    assert status == 200, body
    assert response_headers["Cache-Control"] == "no-store"
    return msgspec.json.decode(body, type=Catalogue)  # the documented shape, strictly


async def test_anonymous_callers_see_public_models_only(gw, http):
    assert [m.name for m in (await catalogue(http, gw)).models] == ["open"]


async def test_a_token_sees_public_models_and_its_restricted_ones(gw, http):
    assert [m.name for m in (await catalogue(http, gw, bearer(ANALYST))).models] == \
        ["open", "private"]
    assert [m.name for m in (await catalogue(http, gw, bearer(OTHER))).models] == \
        ["open", "theirs"]
    basic = base64.b64encode(f"{ANALYST}:{ANALYST}".encode()).decode()
    assert [m.name for m in (await catalogue(http, gw, {"Authorization": f"Basic {basic}"})
                             ).models] == ["open", "private"]


@pytest.mark.parametrize("path", ["/models", "/models/open", "/models/private"])
async def test_an_unknown_token_is_401(gw, http, path):
    status, body, headers = await get(http, gw, path, bearer("not-a-token"))
    assert status == 401
    assert "WWW-Authenticate" in headers
    assert msgspec.json.decode(body)["error"]["type"] == "unauthorized"


@pytest.mark.parametrize("token, model, status", [
    (None, "private", 401),     # a token is needed, as for a call
    (OTHER, "private", 403),    # this token may not call it
    (ANALYST, "private", 200),
    (None, "open", 200),
    (ANALYST, "no-such-model", 404),
    (None, "no-such-model", 404),
])
async def test_one_model_answers_as_a_call_to_it_would(gw, http, token, model, status):
    got, body, _ = await get(http, gw, f"/models/{model}", bearer(token) if token else None)
    assert got == status, body
    if status == 200:
        assert msgspec.json.decode(body, type=CatalogueModel).name == model
    else:
        assert msgspec.json.decode(body)["error"]["type"] in (
            "unauthorized", "forbidden", "not_found")


async def test_versions_carry_what_calls_to_their_urls_confirm(gw, http):
    status, body, _ = await get(http, gw, "/models/private", bearer(ANALYST))
    assert status == 200
    model = msgspec.json.decode(body, type=CatalogueModel)
    assert (model.description, model.public, model.routing) == (
        "Only for the analyst", False, "advanced")
    assert (model.promoted, model.latest, model.production) == (1, 2, 1)
    assert [v.number for v in model.versions] == [1, 2]
    one, two = model.versions
    assert (one.language, one.function, one.published, one.ready) == ("python", "add", True, True)
    assert (one.workers_ready, one.workers_expected) == (2, 2)
    assert (two.function, two.workers_ready, two.workers_expected) == ("whoami", 1, 1)
    assert one.urls.model == "/models/private/1/model"
    assert one.urls.v2_infer == "/v2/models/private/versions/1/infer"
    assert model.urls.latest == "/models/private/latest/model"
    assert model.urls.production == "/models/private/labels/prod/model"
    # the listed URLs answer, and the version ids are the responses' model_version
    for path, number, arguments in [(one.urls.model, 1, [1, 2]), (two.urls.model, 2, []),
                                    (model.urls.production, 1, [1, 2]),
                                    (model.urls.latest, 2, [])]:
        async with http.post(f"{gw.url}{path}", json={"parameters": arguments},
                             headers=bearer(ANALYST)) as resp:
            assert resp.status == 200, path
            release = (await resp.json())["release"]
        assert release["model_version_number"] == number
        assert release["model_version"] == model.versions[number - 1].version_id


async def test_unpublished_versions_are_listed_as_such(gw, http):
    status, body, _ = await get(http, gw, "/models/open")
    assert status == 200
    model = msgspec.json.decode(body, type=CatalogueModel)
    assert (model.routing, model.promoted, model.latest, model.production) == (
        "basic", None, 3, 3)
    by_number = {v.number: v for v in model.versions}
    assert sorted(by_number) == [1, 2, 3]
    hidden = by_number[2]
    assert (hidden.published, hidden.version_id, hidden.urls, hidden.ready) == (
        False, None, None, False)
    assert (hidden.workers_ready, hidden.workers_expected) == (0, 0)
    assert by_number[1].published and by_number[3].published
    assert by_number[1].version_id != by_number[3].version_id
    async with http.post(f"{gw.url}/models/open/2/model", json={"parameters": [1, 2]}) as resp:
        assert resp.status == 404
