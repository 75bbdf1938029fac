"""Versions are snapshots (SPEC §6): a version serves, byte for byte, the project files it was
published with, whatever happens to the working tree since, across reloads and restarts; the
whole model can be withdrawn and a version brought back; what cannot be snapshotted is refused
with the version and the path named, and the old config keeps serving."""

import asyncio
import os
import shutil
import sys
from pathlib import Path

import yaml

from conftest import ROOT, start_gateway
from gateway import audit

PREDICT = """\
import json
from pathlib import Path

WEIGHT = float(Path("data/weights.txt").read_text())  # relative to the project, not to src/


def predict():
    extra = Path("data/extra.txt")
    return {"weight": WEIGHT, "extra": extra.read_text() if extra.exists() else None,
            "cwd": str(Path.cwd()), "kind": "first"}
"""

REPLACED = PREDICT.replace('"first"', '"second"')


def make_project(root: Path) -> Path:
    project = root / "proj"
    (project / "src").mkdir(parents=True)
    (project / "data").mkdir()
    (project / "src" / "predict.py").write_text(PREDICT)
    (project / "data" / "weights.txt").write_text("1.5")
    (project / "data" / "extra.txt").write_text("extra-1")
    (project / "notes.tmp").write_text("left out")
    (project / ".modelgateignore").write_text("*.tmp\n")
    return project


def config_text(extra_versions: str = "") -> str:
    return f"""\
# a project in a directory of its own (this comment must survive)
models:
  m:
    access: {{public: true}}
    project: proj
    versions:
      1: {{language: python, script: proj/src/predict.py, function: predict}}
{extra_versions}"""


async def cli(*args):
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", *map(str, args), cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode, out.decode(), err.decode()


async def call(http, gw, label):
    """Status and what a version answers: its result and release (not timings, ids)."""
    async with http.post(gw.model_url("m", label), json={"parameters": []}) as resp:
        body = await resp.json()
    return resp.status, {k: body[k] for k in ("result", "release", "error") if k in body}


def versions_in(config: Path) -> dict:
    return yaml.safe_load(config.read_text())["models"]["m"]["versions"]


async def test_a_version_serves_its_snapshot_whatever_happens_to_the_project(tmp_path, http):
    directory = tmp_path / "deploy"
    directory.mkdir()
    project = make_project(directory)
    gw = await start_gateway(directory, config_text())
    try:
        config = gw.config_path
        # the first serve of a version without a snapshot took one and recorded it
        first = versions_in(config)[1]["snapshot"]
        assert first.startswith("sha256:")
        assert "this comment must survive" in config.read_text()
        status, v1 = await call(http, gw, 1)
        assert status == 200, v1
        snapshot_dir = Path(v1["result"]["cwd"])
        assert v1["result"] == {"weight": 1.5, "extra": "extra-1", "cwd": str(snapshot_dir),
                                "kind": "first"}
        assert snapshot_dir.is_relative_to(directory / ".modelgate")  # cwd: the snapshot root
        assert sorted(p.relative_to(snapshot_dir).as_posix() for p in snapshot_dir.rglob("*")
                      if p.is_file()) == [".modelgateignore", "data/extra.txt",
                                          "data/weights.txt", "src/predict.py"]
        assert not os.access(snapshot_dir / "data" / "weights.txt", os.W_OK) or os.getuid() == 0
        assert (snapshot_dir / "data" / "weights.txt").stat().st_mode & 0o222 == 0
        assert v1["release"]["script"] == "src/predict.py"
        assert v1["release"]["function"] == "predict"

        # edit, delete and replace the project's files, then publish v2
        (project / "data" / "weights.txt").write_text("2.5")  # in place
        (project / "data" / "extra.txt").unlink()
        (project / "src" / "predict.py").unlink()
        (project / "src" / "predict.py").write_text(REPLACED)
        code, _, err = await cli("publish", "m", "--script", project / "src" / "predict.py",
                                   "--function", "predict", "-c", config)
        assert code == 0, err
        second = versions_in(config)[2]["snapshot"]
        assert second != first

        status, again = await call(http, gw, 1)
        assert status == 200 and again == v1  # the same answer, the same model_version
        status, v2 = await call(http, gw, 2)
        assert v2["result"]["weight"] == 2.5 and v2["result"]["extra"] is None
        assert v2["result"]["kind"] == "second"
        assert v2["release"]["model_version"] != v1["release"]["model_version"]

        # a reload of the changed working tree changes nothing either
        code, _, err = await cli("reload", config)
        assert code == 0, err
        assert await call(http, gw, 1) == (200, v1)
    finally:
        assert await gw.stop() == 0

    # after a restart (the same file, the same store), v1 is still the v1 published
    (project / "data" / "weights.txt").write_text("3.5")
    gw = await start_gateway(directory, config.read_text())
    try:
        assert await call(http, gw, 1) == (200, v1)
        assert (await call(http, gw, 2))[1]["release"] == v2["release"]
    finally:
        await gw.stop()


async def test_the_same_content_is_the_same_snapshot_and_model_version(tmp_path, http):
    """Two copies of one project (two machines, say): one id; one changed byte: another."""
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    make_project(one)
    shutil.copytree(one, two)
    (two / "proj" / "data" / "extra.txt").write_text("extra-2")
    (two / "proj" / "notes.tmp").write_text("ignored, so no difference")
    first = await start_gateway(one, config_text())
    try:
        _, a = await call(http, first, 1)
    finally:
        await first.stop()
    shutil.copy(one / "proj" / "data" / "extra.txt", two / "proj" / "data" / "extra.txt")
    second = await start_gateway(two, config_text())
    try:
        _, b = await call(http, second, 1)
    finally:
        await second.stop()
    assert versions_in(one / "deployment.yaml") == versions_in(two / "deployment.yaml")
    assert a["release"]["model_version"] == b["release"]["model_version"]
    # one byte more in a data file: another snapshot, another model_version
    (two / "proj" / "data" / "weights.txt").write_text("1.50")
    (two / "deployment.yaml").write_text(config_text())
    third = await start_gateway(two, config_text())
    try:
        _, c = await call(http, third, 1)
    finally:
        await third.stop()
    assert c["release"]["model_version"] != a["release"]["model_version"]
    assert versions_in(two / "deployment.yaml")[1]["snapshot"] != \
        versions_in(one / "deployment.yaml")[1]["snapshot"]


async def test_unpublish_a_whole_model_then_republish_a_version(tmp_path, http):
    directory = tmp_path / "deploy"
    directory.mkdir()
    make_project(directory)
    gw = await start_gateway(directory, config_text())
    try:
        config = gw.config_path
        _, v1 = await call(http, gw, 1)
        code, out, err = await cli("unpublish", "m", "-c", config)
        assert code == 0, err
        assert "every version" in out
        for label in (1, "latest", "prod"):
            status, body = await call(http, gw, label)
            assert status == 404 and "unpublished" in body["error"]["message"], body
        async with http.get(f"{gw.url}/models") as resp:
            assert "m" not in [m["name"] for m in (await resp.json())["models"]]
        # the working tree changes meanwhile; republishing serves the snapshot
        (directory / "proj" / "data" / "weights.txt").write_text("9")
        code, out, err = await cli("republish", "m", "1", "-c", config)
        assert code == 0, err
        assert await call(http, gw, 1) == (200, v1)
        lines = audit.read_from(config.parent / "audit.jsonl")
        acted = [(line.action, line.model, line.version) for line in lines
                 if line.action in ("unpublish", "republish")]
        assert acted == [("unpublish", "m", None), ("republish", "m", 1)]
        republished = next(line for line in lines if line.action == "republish")
        assert republished.snapshot == versions_in(config)[1]["snapshot"]
    finally:
        await gw.stop()


async def test_what_cannot_be_snapshotted_is_refused_and_the_old_config_keeps_serving(
        tmp_path, http):
    directory = tmp_path / "deploy"
    directory.mkdir()
    project = make_project(directory)
    gw = await start_gateway(directory, config_text())
    try:
        config = gw.config_path
        _, v1 = await call(http, gw, 1)
        recorded = config.read_text()
        outside = tmp_path / "elsewhere.txt"
        outside.write_text("not in the project")
        big = directory / "big"
        (big / "src").mkdir(parents=True)
        (big / "src" / "predict.py").write_text(PREDICT)
        (big / "blob").write_bytes(b"\x01" * 3_000_000)
        cases = {  # the version 2 added by hand -> what the refusal names
            "{project: gone, script: gone/p.py, function: predict}":
                ("models.m.versions.2.project",
                 f"the project directory {directory / 'gone'} does not exist"),
            "{project: big, script: big/src/predict.py, function: predict}":
                ("models.m.versions.2.project", "over the snapshot limit of 2.0 MB"),
            f"{{script: proj/src/predict.py, function: predict, snapshot: sha256:{'a' * 64}}}":
                ("models.m.versions.2.snapshot", f"sha256:{'a' * 64} is not in the store"),
            "{script: proj/src/predict.py, function: predict}":
                ("models.m.versions.2.project",
                 f"{project / 'leak.txt'} is a symbolic link to {outside}, outside the project"),
        }
        (project / "leak.txt").symlink_to(outside)  # the last case; v1 is already snapshotted
        for entry, (where, message) in cases.items():
            config.write_text(recorded.replace("gateway: {}", "")
                              .replace("models:", "gateway: {snapshot_max_bytes: 2000000}\n"
                                                  "models:", 1)
                              + f"      2: {{language: python, {entry[1:]}\n")
            code, _, err = await cli("reload", config)
            assert code == 1, entry
            assert f"{where}: " in err and message in err, err
            assert await call(http, gw, 1) == (200, v1)  # the old config keeps serving
            status, body = await call(http, gw, 2)
            assert status == 404, body
        # publish refuses the same, and leaves the file as it was
        config.write_text(recorded)
        code, _, err = await cli("publish", "m", "--script", project / "src" / "predict.py",
                                 "--function", "predict", "-c", config)
        assert code == 1
        assert "models.m.versions.2.project: " in err and "outside the project" in err, err
        assert config.read_text() == recorded
    finally:
        await gw.stop()


async def test_a_recorded_snapshot_missing_from_the_store_refuses_to_start(tmp_path):
    directory = tmp_path / "deploy"
    directory.mkdir()
    make_project(directory)
    missing = f"sha256:{'b' * 64}"
    text = config_text().replace("function: predict}", f"function: predict, snapshot: {missing}}}")
    (directory / "deployment.yaml").write_text(text)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "serve", str(directory / "deployment.yaml"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert f"models.m.versions.1.snapshot: snapshot {missing} is not in the store " \
           f"{directory / '.modelgate' / 'store'}; publish the version again" in err.decode()


SIX = """\
import sys

import six


def which():
    return {"six": six.__version__, "python": sys.executable, "module": six.__file__}
"""


async def test_two_versions_run_side_by_side_in_environments_of_their_own(tmp_path, http):
    """Each version's requirements (six 1.16.0, then 1.17.0: small, pure Python, on PyPI)
    are resolved and installed with uv into a venv of its own; v1 keeps its own after the
    project's requirements change; an environment that does not resolve is refused."""
    directory = tmp_path / "deploy"
    project = directory / "proj"
    project.mkdir(parents=True)
    (project / "predict.py").write_text(SIX)
    (project / "requirements.txt").write_text("six==1.16.0\n")
    text = """\
models:
  m:
    access: {public: true}
    versions:
      1: {language: python, script: proj/predict.py, function: which,
          environment: {requirements: requirements.txt}}
"""
    gw = await start_gateway(directory, text, startup_timeout=300)
    try:
        config = gw.config_path
        (project / "requirements.txt").write_text("six==1.17.0\n")
        code, _, err = await cli("publish", "m", "--script", project / "predict.py",
                                 "--function", "which", "-c", config)
        assert code == 0, err
        # like its neighbour, the new version has an environment of its own
        assert versions_in(config)[2]["environment"] == {"requirements": "requirements.txt"}
        (_, one), (_, two) = await call(http, gw, 1), await call(http, gw, 2)
        environments = directory / ".modelgate" / "environments"
        assert one["result"]["six"] == "1.16.0" and two["result"]["six"] == "1.17.0"
        for answer in (one, two):
            assert Path(answer["result"]["python"]).is_relative_to(environments)
            assert Path(answer["result"]["module"]).is_relative_to(environments)
        assert one["result"]["python"] != two["result"]["python"]
        assert one["release"]["model_version"] != two["release"]["model_version"]

        # requirements that do not resolve: refused with uv's message, the old config serving
        (project / "requirements.txt").write_text("six==0.0.404\n")
        code, _, err = await cli("publish", "m", "--script", project / "predict.py",
                                 "--function", "which", "-c", config)
        assert code == 1 and "models.m.versions.3.environment: cannot resolve" in err, err
        doc = yaml.safe_load(config.read_text())
        doc["models"]["m"]["versions"][3] = {
            "language": "python", "script": "proj/predict.py", "function": "which",
            "environment": {"requirements": "requirements.txt"}}
        config.write_text(yaml.safe_dump(doc, sort_keys=False))
        code, _, err = await cli("reload", config)
        assert code == 1
        assert "models.m.versions.3.environment: cannot resolve the requirements; uv says:" \
            in err and "six==0.0.404" in err, err
        assert await call(http, gw, 1) == (200, one)

        # gc removes an environment nothing uses, never those of the config's versions
        stale = environments / "stale"
        (stale / "bin").mkdir(parents=True)
        os.utime(stale, (0, 0))
        used = {Path(a["result"]["python"]).parent.parent for a in (one, two)}
        for venv in used:
            os.utime(venv, (0, 0))
        code, out, err = await cli("gc", "-c", config, "--keep-days", "0")
        assert code == 0, err
        assert not stale.exists() and all(venv.is_dir() for venv in used)
        assert "1 environment(s)" in out
    finally:
        await gw.stop()


async def test_an_r_version_runs_in_its_snapshot_with_its_libraries_first(tmp_path, http):
    directory = tmp_path / "deploy"
    project = directory / "rproj"
    (project / "src").mkdir(parents=True)
    (project / "data").mkdir()
    (project / "lib").mkdir()
    (project / "lib" / "README").write_text("R packages of this version go here\n")
    (project / "data" / "weight.txt").write_text("4.5\n")
    (project / "src" / "predict.R").write_text(
        'weight <- as.numeric(readLines("data/weight.txt"))  # relative to the project\n'
        "paths <- function() list(libs = .libPaths(), wd = getwd(), weight = weight)\n")
    gw = await start_gateway(directory, """\
models:
  m:
    access: {public: true}
    project: rproj
    versions:
      1: {language: r, script: rproj/src/predict.R, function: paths,
          environment: {r_libs: [lib]}}
""")
    try:
        status, answer = await call(http, gw, 1)
        assert status == 200, answer
        tree = Path(answer["result"]["wd"])
        assert tree.is_relative_to(directory / ".modelgate" / "store")
        assert answer["result"]["weight"] == 4.5
        assert answer["result"]["libs"][0] == str(tree / "lib")
        assert answer["release"]["script"] == "src/predict.R"
    finally:
        await gw.stop()


async def test_a_version_added_by_hand_gets_its_snapshot_recorded_at_the_reload(tmp_path,
                                                                                 http):
    directory = tmp_path / "deploy"
    directory.mkdir()
    project = make_project(directory)
    gw = await start_gateway(directory, config_text())
    try:
        config = gw.config_path
        (project / "data" / "weights.txt").write_text("7")
        config.write_text(config_text(
            "      2: {language: python, script: proj/src/predict.py, function: predict}\n")
            .replace("function: predict}\n", f"function: predict, snapshot: "
                                             f"'{versions_in(config)[1]['snapshot']}'}}\n", 1))
        code, _, err = await cli("reload", config)
        assert code == 0, err
        recorded = versions_in(config)
        assert recorded[2]["snapshot"].startswith("sha256:")
        assert recorded[2]["snapshot"] != recorded[1]["snapshot"]
        assert "this comment must survive" in config.read_text()
        status, v2 = await call(http, gw, 2)
        assert status == 200 and v2["result"]["weight"] == 7.0
        # reloading the recorded file keeps v2's warm pool (the same version id)
        code, out, err = await cli("reload", config)
        assert code == 0 and "kept: m v1, m v2" in out and "started" not in out, (out, err)
    finally:
        await gw.stop()
