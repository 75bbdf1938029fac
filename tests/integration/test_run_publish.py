"""Publishing from a training run (SPEC §6): ``modelgate run --publish`` runs the command in
the model's project, streaming its output, publishes only when it succeeds, and promotes only
after a check call answered 200, on a real gateway."""

import asyncio
import hashlib
import os
import sys

import yaml

from conftest import ROOT, start_gateway
from gateway import audit

ADMIN = "ops-run-publish-token"

PREDICT = """\
from pathlib import Path

WEIGHT = Path("data/weight.txt").read_text().strip()


def predict(x=0):
    if WEIGHT == "bad":
        raise ValueError("trained badly")
    return {"weight": WEIGHT, "x": x}
"""

TRAIN = """\
import sys
from pathlib import Path

print(f"training: {sys.argv[1]} in {Path.cwd().name}", flush=True)
Path("data/weight.txt").write_text(sys.argv[1])
"""


def config():
    digest = hashlib.sha256(ADMIN.encode()).hexdigest()
    return f"""\
tokens:
  ops: {{sha256: "{digest}", admin: true}}
models:
  m:
    access: {{public: true}}
    routing: advanced
    promoted: 1
    example: {{parameters: [1]}}
    versions:
      1: {{language: python, script: proj/predict.py, function: predict}}
"""


async def modelgate(*args):
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", *map(str, args), cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "MODELGATE_TOKEN": ADMIN})
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode, out.decode(), err.decode()


async def served(http, gw, label):
    async with http.post(gw.model_url("m", label), json={"parameters": [2]}) as resp:
        body = await resp.json()
    return resp.status, body.get("release", {}).get("model_version_number"), body.get("result")


async def test_a_training_run_publishes_only_on_success_and_promotes_after_a_check(tmp_path,
                                                                                  http):
    directory = tmp_path / "deploy"
    (directory / "proj" / "data").mkdir(parents=True)
    (directory / "proj" / "predict.py").write_text(PREDICT)
    (directory / "proj" / "train.py").write_text(TRAIN)
    (directory / "proj" / "data" / "weight.txt").write_text("one")
    gw = await start_gateway(directory, config())
    cfg = gw.config_path
    run = ("run", "--publish", "m", "-c", cfg, "--url", gw.url)
    try:
        # success: published as v2 (with what the run wrote), production untouched
        code, out, err = await modelgate(*run, "--", sys.executable, "train.py", "two")
        assert code == 0, out + err
        assert "training: two in proj" in out  # its output, from the project directory
        assert await served(http, gw, 2) == (200, 2, {"weight": "two", "x": 2})
        assert (await served(http, gw, "prod"))[1] == 1
        # failure: the command's code, nothing published
        before = cfg.read_text()
        code, out, err = await modelgate(*run, "--", sys.executable, "-c",
                                         "import sys; print('boom'); sys.exit(3)")
        assert code == 3, out + err
        assert "boom" in out and "nothing was published" in err
        assert cfg.read_text() == before
        # --promote after a check call that answers 200 (the model's example by default)
        code, out, err = await modelgate(*run, "--promote", "--", sys.executable, "train.py",
                                         "three")
        assert code == 0, out + err
        assert "check call of v3 answered 200" in out
        assert await served(http, gw, "prod") == (200, 3, {"weight": "three", "x": 2})
        # --promote with a failing check: published, production stays, and it says why
        code, out, err = await modelgate(*run, "--promote", "--check-body",
                                         '{"parameters": [5]}', "--", sys.executable,
                                         "train.py", "bad")
        assert code == 1, out + err
        assert "v4 is published but not promoted" in err and "trained badly" in err
        assert "production stays v3" in err
        assert (await served(http, gw, "prod"))[1] == 3
        assert sorted(yaml.safe_load(cfg.read_text())["models"]["m"]["versions"]) == [
            1, 2, 3, 4]
    finally:
        await gw.stop()


async def test_promote_under_basic_routing_is_refused_before_the_command_runs(tmp_path):
    directory = tmp_path / "deploy"
    (directory / "proj").mkdir(parents=True)
    (directory / "proj" / "predict.py").write_text("def predict():\n    return 1\n")
    cfg = directory / "deployment.yaml"
    cfg.write_text("models:\n  m:\n    versions:\n"
                   "      1: {language: python, script: proj/predict.py, function: predict}\n")
    marker = directory / "proj" / "ran"
    code, out, err = await modelgate("run", "--publish", "m", "-c", cfg, "--promote",
                                     "--check-body", "{}", "--", sys.executable, "-c",
                                     f"open({str(marker)!r}, 'w')")
    assert code == 1 and "routing: advanced" in err, out + err
    assert not marker.exists()


async def test_a_training_run_publishes_through_the_http_api(tmp_path, http):
    directory = tmp_path / "deploy"
    (directory / "proj" / "data").mkdir(parents=True)
    (directory / "proj" / "predict.py").write_text(PREDICT)
    (directory / "proj" / "train.py").write_text(TRAIN)
    (directory / "proj" / "data" / "weight.txt").write_text("one")
    (directory / "proj" / "scratch.log").write_text("left out")
    (directory / "proj" / ".modelgateignore").write_text("*.log\n")
    gw = await start_gateway(directory, config())
    # the CronJob's view: a read-only copy of the config, the gateway's API to publish to
    copy = tmp_path / "mounted" / "config.yaml"
    copy.parent.mkdir()
    copy.write_text(gw.config_path.read_text().replace("proj/", f"{directory}/proj/"))
    try:
        code, out, err = await modelgate("run", "--publish", "m", "-c", copy, "--api", gw.url,
                                         "--promote", "--", sys.executable, "train.py", "api")
        assert code == 0, out + err
        assert await served(http, gw, "prod") == (200, 2, {"weight": "api", "x": 2})
        assert copy.read_text().count("versions:") == 1 and "2:" not in copy.read_text()
        lines = [(x.actor, x.action, x.version) for x in
                 audit.read_from(directory / "audit.jsonl") if x.action in ("publish", "promote")]
        assert lines == [("ops", "publish", 2), ("ops", "promote", 2)]
        snapshot = yaml.safe_load(gw.config_path.read_text())["models"]["m"]["versions"][2][
            "snapshot"]
        manifest = directory / ".modelgate" / "store" / "manifests" / f"{snapshot[7:]}.json"
        assert "scratch.log" not in manifest.read_text()  # the project's ignore rules hold
    finally:
        await gw.stop()
