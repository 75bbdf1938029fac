"""`modelgate bench --url/-c`: a load sweep and an A/B of two versions of a real gateway's model,
run as the user runs it (a subprocess), with short windows; the report files hold a row per
level and version. Bad input exits 2 with a message that says what to fix. Nothing here
asserts on speed."""

import asyncio
import csv
import os
import shutil
import sys

import pytest
import yaml

from conftest import EXAMPLES, ROOT, free_port, start_gateway, token_sha256, version

SCRIPT = EXAMPLES / "basics" / "basics.py"
TOKENS = {"allowed": "bench-allowed-token-1", "other": "bench-other-token-2"}
SHORT = ["--window", "1", "--max-windows", "3"]  # at most 3 windows of 1 s per row
BODY = '{"parameters": [1, 2, 3]}'

pytestmark = pytest.mark.timeout(120)

if shutil.which("wrk") is None:  # `make test` installs it (scripts/system-deps.sh)
    if os.environ.get("MODELGATE_TEST_SKIP_WRK") != "1":
        pytest.fail("wrk is not installed; `make test` installs it (scripts/system-deps.sh). "
                    "Set MODELGATE_TEST_SKIP_WRK=1 to skip these tests on purpose.", pytrace=False)
    pytest.skip("wrk is missing and MODELGATE_TEST_SKIP_WRK=1", allow_module_level=True)




MODELS = {
    "sum": {"access": {"public": True}, "routing": "advanced", "promoted": 1,
            "example": {"parameters": [4, 5]},
            "versions": {1: version(SCRIPT, "add", workers=1),
                         2: version(SCRIPT, "add", workers=1),
                         3: version(SCRIPT, "add", workers=1, unpublished=True)}},
    "secret": {"access": {"public": False, "tokens": ["allowed"]},
               "versions": {1: version(SCRIPT, "add", workers=1)}},
}
HASHES = {name: {"sha256": token_sha256(token)} for name, token in TOKENS.items()}


@pytest.fixture(scope="module")
async def gw(tmp_path_factory):
    running = await start_gateway(tmp_path_factory.mktemp("bench"), {
        "gateway": {"access_log": False}, "tokens": HASHES, "models": MODELS})
    yield running
    await running.stop()


async def bench(*args, env=None):
    """(exit status, stdout, stderr) of `modelgate bench ARGS`, run as a user would."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "bench", *args, cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None})
    out, err = await asyncio.wait_for(process.communicate(), 90)
    return process.returncode, out.decode(), err.decode()


def rows(directory):
    with open(directory / "bench.csv", newline="") as f:
        return list(csv.DictReader(f))


async def test_a_sweep_reports_a_row_per_concurrency(gw, tmp_path):
    out = tmp_path / "report"
    code, stdout, stderr = await bench("--url", gw.url, "--model", "sum", "--body", BODY,
                                       "--concurrency", "1,2", *SHORT, "--out", str(out))
    assert code == 0, stderr
    assert {p.name for p in out.iterdir()} == {"bench.md", "bench.csv", "bench.png"}
    table = rows(out)
    assert [(r["level"], r["version"], r["named"]) for r in table] == [("1", "1", "prod"),
                                                                       ("2", "1", "prod")]
    assert all(int(r["answers"]) > 0 and r["errors"] == "0" for r in table)
    assert all(int(r["gateway_calls"]) >= int(r["answers"]) for r in table)  # its /metrics
    markdown = (out / "bench.md").read_text()
    assert "| 1 | v1 (prod) |" in markdown and "| 2 | v1 (prod) |" in markdown
    assert "Where the time goes" in markdown and "![sum v1 (prod)](bench.png)" in markdown
    assert "c=1 v1 (prod): window 1/3" in stderr  # the progress line
    assert "requests/s" in stdout.splitlines()[0] and "bench.csv" in stdout  # the summary


async def test_an_ab_run_measures_both_versions_alternately(gw, tmp_path):
    out = tmp_path / "ab"
    code, stdout, stderr = await bench("--url", gw.url, "--model", "sum", "--body", BODY,
                                       "--compare", "prod,2", "--concurrency", "1,2", *SHORT,
                                       "--out", str(out))
    assert code == 0, stderr
    assert sorted((r["level"], r["version"]) for r in rows(out)) == [
        ("1", "1"), ("1", "2"), ("2", "1"), ("2", "2")]
    windows = [line.split(": window")[0].split("] ", 1)[1] for line in stderr.splitlines()
               if ": window" in line]
    assert windows[:4] == ["c=1 v1 (prod)", "c=1 v2", "c=1 v2", "c=1 v1 (prod)"]  # A B B A
    markdown = (out / "bench.md").read_text()
    assert "## A/B" in markdown and "v2 against v1 (prod)" in markdown
    verdicts = ("slower beyond the noise", "faster beyond the noise", "within the noise")
    assert any(f"v2 against v1 (prod): {v} at" in stdout for v in verdicts)


async def test_a_config_gives_the_url_and_the_example_body_at_a_held_rate(gw, tmp_path):
    config = tmp_path / "deployment.yaml"  # the file the gateway serves, as the user has it
    config.write_text(yaml.safe_dump({"gateway": {"listen": gw.url.removeprefix("http://")},
                                      "tokens": HASHES, "models": MODELS}))
    out = tmp_path / "rate"
    code, _, stderr = await bench("-c", str(config), "--model", "sum", "--latest", "--rate",
                                  "50/s", "--connections", "2", *SHORT, "--out", str(out))
    assert code == 0, stderr
    [row] = rows(out)
    assert (row["level_kind"], row["level"], row["connections"], row["version"]) == (
        "rate", "50", "2", "2")
    assert "body: 20 bytes" in (out / "bench.md").read_text()  # {"parameters":[4,5]}


def unreachable_url():
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize(("args", "env", "expected"), [
    (["--model", "sum"], {}, "no gateway answers at http://127.0.0.1:"),
    (["--model", "secret"], {"MODELGATE_TOKEN": None},
     "model `secret` needs an access token (401): put it in the environment variable "
     "MODELGATE_TOKEN"),
    (["--model", "secret", "--token-env", "MY_TOKEN"], {"MY_TOKEN": "not-a-token"},
     "the gateway does not accept the token in MY_TOKEN (401"),
    (["--model", "secret", "--token-env", "MY_TOKEN"], {"MY_TOKEN": TOKENS["other"]},
     "the token in MY_TOKEN may not call model `secret` (403"),
    (["--model", "sum", "--body", '{"data": {"x": 1}}'], {},
     'answered 400, not 200:\n  {"error":{"type":"bad_arguments"'),
    (["--model", "nope"], {}, "no model `nope` at http://127.0.0.1:"),
    (["--model", "sum", "--version", "9"], {}, "model `sum` has no version 9; published: 1, 2"),
    (["--model", "sum", "--compare", "1,3"], {}, "version 3 of model `sum` is unpublished"),
    (["--model", "sum", "--compare", "prod,1"], {}, "both are version 1 today"),
    (["--model", "sum", "--body", "{nope"], {}, "--body is not JSON"),
], ids=["unreachable", "401-no-token", "401-unknown-token", "403", "400-body", "unknown-model",
        "unknown-version", "unpublished-version", "same-version", "body-not-json"])
async def test_bad_input_exits_2_saying_what_to_fix(gw, tmp_path, args, env, expected):
    url = unreachable_url() if expected.startswith("no gateway") else gw.url
    body = [] if "--body" in args else ["--body", BODY]
    code, stdout, stderr = await bench("--url", url, *args, *body, "--out",
                                       str(tmp_path / "never"), env=env)
    assert code == 2 and expected in stderr, stderr
    assert not (tmp_path / "never").exists() and stdout == ""


async def test_the_scenarios_are_still_there_without_url_or_model():
    code, _, stderr = await bench("--scenario", "no-such-scenario")
    assert code == 1 and "no scenario no-such-scenario; known: " in stderr
