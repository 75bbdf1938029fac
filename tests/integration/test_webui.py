"""The web model tester (SPEC §7): the page and its files over plain HTTP, the model list the
page gets, and the page itself driven in a real headless Chromium (a screenshot of it is saved
under tests/artifacts/)."""

import hashlib
import shutil

import msgspec
import pytest
from playwright.async_api import async_playwright

from conftest import ROOT, TEST_MODELS, start_gateway, version

SCRIPT = TEST_MODELS / "ui_functions.py"
TOKEN = "webui-test-token-1"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
UI_TIMEOUT_MS = 15_000

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
async def gw(tmp_path_factory):
    running = await start_gateway(tmp_path_factory.mktemp("webui"), {
        "tokens": {"analyst": {"sha256": hashlib.sha256(TOKEN.encode()).hexdigest()}},
        "models": {
            "greet": {"description": "Says hello to someone, politely",
                      "access": {"public": True},
                      "example": {"data": {"name": "Ada", "punctuation": "!"}},
                      "versions": {1: version(SCRIPT, "greet")}},
            "double": {"description": "Twice the number it is given",
                       "access": {"public": False, "tokens": ["analyst"]},
                       "routing": "advanced", "promoted": 1,
                       "example": {"parameters": [21.0]},
                       "versions": {1: version(SCRIPT, "double"),
                                    2: version(SCRIPT, "slow_double")}},
            "refuse": {"description": "Always raises", "access": {"public": True},
                       "versions": {1: version(SCRIPT, "refuse")}},
        },
    })
    yield running
    await running.stop()


@pytest.fixture(scope="module")
async def browser():
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                    args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser, gw):
    context = await browser.new_context(viewport={"width": 1360, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.problems = []
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    await page.goto(gw.url + "/")
    await page.wait_for_selector("#models button[data-model]")
    yield page
    await context.close()


# ---------------------------------------------------------------------- plain HTTP


@pytest.mark.parametrize("path, content_type, words", [
    ("/", "text/html", b'<script src="/static/app.js"'),
    ("/static/app.js", "text/javascript", b"function send()"),
    ("/static/style.css", "text/css", b"prefers-color-scheme: dark"),
    ("/static/favicon.svg", "image/svg+xml", b"<svg"),
])
async def test_the_page_and_its_files_are_served_with_their_content_types(gw, http, path,
                                                                         content_type, words):
    async with http.get(gw.url + path) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].split(";")[0] == content_type
        assert words in await resp.read()
        assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
        etag = resp.headers["ETag"]
    async with http.get(gw.url + path, headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304


async def test_an_unknown_static_file_is_a_json_404(gw, http):
    for path in ("/static/nope.js", "/static/..%2Fapp.py"):
        async with http.get(gw.url + path) as resp:
            assert resp.status == 404 and (await resp.json())["error"]["type"] == "not_found"


async def test_the_page_sees_public_models_and_with_a_token_those_it_may_call(gw, http):
    async def names(headers):
        async with http.get(gw.url + "/ui/models.json", headers=headers) as resp:
            return resp.status, await resp.json()

    status, anonymous = await names({})
    assert status == 200 and anonymous["token"] is None
    assert [m["name"] for m in anonymous["models"]] == ["greet", "refuse"]
    status, with_token = await names({"Authorization": f"Bearer {TOKEN}"})
    assert with_token["token"] == "analyst"
    [double] = [m for m in with_token["models"] if m["name"] == "double"]
    assert (double["versions"], double["latest"], double["production"]) == ([1, 2], 2, 1)
    assert double["example"] == '{"parameters":[21.0]}'  # as JSON text: 21.0 stays a float
    [refuse] = [m for m in with_token["models"] if m["name"] == "refuse"]
    assert refuse["example"] == '{"parameters":[]}'  # no example in the config
    status, body = await names({"Authorization": "Bearer wrong"})
    assert status == 401 and body["error"]["type"] == "unauthorized"
    assert body["error"]["request_id"]  # as every error of the gateway


# ---------------------------------------------------------------------- in a browser


async def response_of(page):
    """Wait for the answer to the last Send; (status text, response JSON)."""
    await page.wait_for_selector("#status-code.ok, #status-code.bad")
    return (await page.text_content("#status-code"),
            msgspec.json.decode(await page.text_content("#output")))


async def test_the_tester_calls_a_model_and_shows_the_answer(page, gw):
    await page.click("#models button[data-model=greet]")
    assert msgspec.json.decode(await page.input_value("#input")) == {
        "data": {"name": "Ada", "punctuation": "!"}}  # the model's example
    await page.fill("#input", '{"data": {"name": "Grace"}}')
    await page.click("#send")
    status, body = await response_of(page)
    assert status == "200 OK"
    assert body["result"] == {"greeting": "Hello, Grace!", "length": 5}
    assert "round trip" in await page.text_content("#timing")
    snippet = await page.text_content("#snippet")
    assert f"curl -X POST '{gw.url}/models/greet/latest/model'" in snippet
    assert """-d '{"data": {"name": "Grace"}}'""" in snippet
    assert not page.problems


async def test_a_restricted_model_with_a_token_and_every_snippet(page, gw):
    await page.fill("#token", TOKEN)
    await page.click("#token-form button[type=submit]")
    await page.click("#models button[data-model=double]")
    assert "21.0" in await page.input_value("#input")
    await page.select_option("#version", "prod")
    await page.click("#send")
    status, body = await response_of(page)
    assert status == "200 OK" and body["release"]["model_version_number"] == 1
    assert '"doubled": 42.0' in await page.text_content("#output")  # a float stays a float
    url = f"{gw.url}/models/double/labels/prod/model"
    expected = {
        "curl": [url, """-d '{"parameters": [21.0]}'""", "Bearer $MODELGATE_TOKEN"],
        "python": [f'"{url}"', 'json={"parameters": [21.0]}', "os.environ['MODELGATE_TOKEN']"],
        "r": [f'"{url}"', """body = '{"parameters": [21.0]}'""", 'Sys.getenv("MODELGATE_TOKEN")'],
        "javascript": [f'fetch("{url}"', """body: '{"parameters": [21.0]}'""",
                       "process.env.MODELGATE_TOKEN"],
    }
    for lang, parts in expected.items():
        await page.click(f".tabs button[data-lang={lang}]")
        snippet = await page.text_content("#snippet")
        for part in parts:
            assert part in snippet, (lang, part, snippet)
        assert TOKEN not in snippet
    await page.click("#copy")
    await page.wait_for_selector("#copy:has-text('Copied')")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "webui.png"), full_page=True)
    # The token is in the page's memory only: not in the URL, not in any storage.
    assert TOKEN not in page.url
    assert TOKEN not in await page.evaluate(
        "JSON.stringify([localStorage, sessionStorage, document.cookie])")
    assert not page.problems


async def test_errors_are_shown_readably(page, gw):
    await page.click("#models button[data-model=refuse]")
    await page.fill("#input", '{"parameters": [3]}')
    await page.click("#send")
    status, body = await response_of(page)
    assert status == "500 Internal Server Error" and body["error"]["type"] == "model_error"
    assert "model_error" in await page.text_content("#error-box")
    assert "ValueError: cannot predict from 3" in await page.text_content("#error-box")
    await page.fill("#input", '{"parameters": [3,]}')
    assert "Not valid JSON: unexpected ']' at line 1, column 19" in await page.text_content(
        "#input-error")
    await page.screenshot(path=str(ARTIFACTS / "webui-error.png"), full_page=True)
    assert not page.problems


# ---------------------------------------------------------------------- managing versions

ADMIN_TOKEN = "webui-admin-token-1"


@pytest.fixture
async def managed(tmp_path):
    digest = hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()
    running = await start_gateway(tmp_path / "manage", {
        "tokens": {"ops": {"sha256": digest, "admin": True}},
        "models": {
            "double": {"description": "Twice the number", "access": {"public": True},
                       "routing": "advanced", "promoted": 1,
                       "example": {"parameters": [21.0]},
                       "versions": {1: version(SCRIPT, "double"),
                                    2: version(SCRIPT, "double")}},
        },
    })
    yield running
    await running.stop()


async def test_an_admin_promotes_through_the_page_and_labels_prod_switches(browser, managed,
                                                                          http):
    async def prod_version():
        async with http.post(managed.model_url("double", "prod"),
                             json={"parameters": [1]}) as resp:
            return (await resp.json())["release"]["model_version_number"]

    for _ in range(5):  # some load for the live columns
        assert await prod_version() == 1
    context = await browser.new_context(viewport={"width": 1360, "height": 1000})
    page = await context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    questions = []

    async def answer(dialog):
        questions.append(dialog.message)
        await (dialog.dismiss() if len(questions) == 1 else dialog.accept())

    page.on("dialog", answer)
    try:
        await page.goto(managed.url + "/")
        await page.wait_for_selector("#models button[data-model]")
        assert await page.locator("#manage").is_hidden()  # no admin token: no management
        await page.fill("#token", ADMIN_TOKEN)
        await page.click("#token-form button[type=submit]")
        await page.wait_for_selector("#manage:not([hidden]) tr[data-version='2']")
        row = page.locator("#versions-body tr[data-version='1']")
        assert "prod" in await row.locator("td").first.text_content()
        assert await row.locator("td").nth(8).text_content() == "0"  # errors
        assert await page.locator("#worker-logs").text_content()
        # the confirmation is asked; dismissed, nothing moves
        await page.click("[data-action='promote-2']")
        assert questions and "v2" in questions[0]
        assert await prod_version() == 1
        # accepted: promoted, and the page shows it
        await page.click("[data-action='promote-2']")
        await page.wait_for_selector("#versions-body tr.production[data-version='2']")
        assert await prod_version() == 2
        await page.wait_for_selector("#audit li:has-text('promote v2')")
        assert "ops" in await page.locator("#audit").text_content()
        await page.screenshot(path=str(ARTIFACTS / "webui-manage.png"), full_page=True)
        # roll back through the page too
        await page.click("#rollback")
        await page.wait_for_selector("#versions-body tr.production[data-version='1']")
        assert await prod_version() == 1
        assert problems == []
    finally:
        await context.close()
