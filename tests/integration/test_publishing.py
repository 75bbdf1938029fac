"""The HTTP publishing API (SPEC §6) on a real gateway: a tar.gz project becomes the next
version once it serves; promote, rollback and unpublish move production as the CLI does, with
the same audit lines; bad archives and read-only configs are refused with nothing written; two
publishes at once both land."""

import asyncio
import io
import os
import subprocess
import tarfile
from pathlib import Path

import yaml

from conftest import require_root, start_gateway, token_sha256
from gateway import audit

ADMIN, USER = "ops-publishing-token", "user-publishing-token"
ADMIN_H = {"Authorization": f"Bearer {ADMIN}"}
GZIP = {**ADMIN_H, "Content-Type": "application/gzip"}

PREDICT = """\
from pathlib import Path

WEIGHT = Path("data/weight.txt").read_text().strip()  # the project's root is the cwd


def predict(x=0):
    return {"weight": WEIGHT, "x": x}
"""




def config(routing="basic"):
    promoted = "    promoted: 1\n" if routing == "advanced" else ""
    return f"""\
# published through HTTP (this comment must survive)
tokens:
  ops: {{sha256: "{token_sha256(ADMIN)}", admin: true}}
  user: {{sha256: "{token_sha256(USER)}"}}
models:
  m:
    access: {{public: true}}
    routing: {routing}
{promoted}    project: proj
    versions:
      1: {{language: python, script: proj/predict.py, function: predict}}
"""


def write_project(directory: Path) -> None:
    (directory / "proj" / "data").mkdir(parents=True)
    (directory / "proj" / "predict.py").write_text(PREDICT)
    (directory / "proj" / "data" / "weight.txt").write_text("one")


def archive(files=None, members=()):
    """A tar.gz of ``files`` ({path: text}) and extra raw ``members`` (TarInfo, data)."""
    files = {"src/predict.py": PREDICT, "data/weight.txt": "two"} if files is None else files
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info, data in members:
            tar.addfile(info, None if data is None else io.BytesIO(data))
    return out.getvalue()


async def start(tmp_path, routing="basic", settings=""):
    directory = tmp_path / "deploy"
    directory.mkdir()
    write_project(directory)
    text = config(routing) + (f"gateway:\n{settings}" if settings else "")
    return await start_gateway(directory, text)


async def publish(http, gw, body, script="src/predict.py", function="predict", headers=GZIP,
                  model="m"):
    async with http.post(f"{gw.url}/admin/models/{model}/versions",
                         params={"script": script, "function": function}, data=body,
                         headers=headers) as resp:
        return resp.status, await resp.json()


async def call(http, gw, label):
    async with http.post(gw.model_url("m", label), json={"parameters": [5]}) as resp:
        return resp.status, await resp.json()


def versions_in(gw):
    return yaml.safe_load(gw.config_path.read_text())["models"]["m"]["versions"]


def stored(gw):
    """What the state directory holds: snapshots, objects, and any scratch left behind."""
    state = gw.config_path.parent / ".modelgate"
    return (sorted(p.name for p in (state / "store" / "manifests").glob("*")),
            sorted(p.name for p in (state / "store" / "objects").glob("*/*")),
            sorted(str(p) for p in (state / "uploads").glob("*")))


async def test_a_published_archive_serves_once_the_answer_comes(tmp_path, http):
    gw = await start(tmp_path)
    try:
        status, body = await publish(http, gw, archive())
        assert status == 201, body
        assert body["version"] == 2 and body["action"] == "publish" and body["changed"]
        assert body["production"] == 2 and body["snapshot"].startswith("sha256:")
        # served as soon as the answer came: no wait, no reload by hand
        status, answer = await call(http, gw, 2)
        assert status == 200, answer
        assert answer["result"] == {"weight": "two", "x": 5}
        assert answer["release"]["model_version"] == body["model_version"]
        assert answer["release"]["script"] == "src/predict.py"
        text = gw.config_path.read_text()
        assert "this comment must survive" in text
        assert versions_in(gw)[2]["snapshot"] == body["snapshot"]
        # the same audit line as the CLI's, with the token's name as the actor
        line = [x for x in audit.read_from(gw.config_path.parent / "audit.jsonl")
                if x.action == "publish"][-1]
        assert (line.actor, line.model, line.version, line.before, line.after,
                line.snapshot, line.result) == ("ops", "m", 2, 1, 2, body["snapshot"], "ok")
        assert line.config_sha256 == audit.config_sha256(gw.config_path.read_bytes())
        async with http.get(f"{gw.url}/admin/models/m/versions", headers=ADMIN_H) as resp:
            listed = await resp.json()
        assert resp.status == 200, listed
        two = listed["versions"][1]
        assert (two["number"], two["function"], two["script"], two["actor"], two["state"],
                two["production"], two["snapshot"]) == (
            2, "predict", "src/predict.py", "ops", "serving", True, body["snapshot"])
        assert two["created"] == line.time
        assert listed["versions"][0]["production"] is False
    finally:
        await gw.stop()


async def test_a_version_that_fails_to_load_is_refused_and_taken_back_out(tmp_path, http):
    gw = await start(tmp_path)
    try:
        before = gw.config_path.read_text()
        broken = PREDICT.replace("WEIGHT =", "raise RuntimeError('no weights')\nWEIGHT =")
        status, body = await publish(http, gw, archive({"src/predict.py": broken}))
        assert status == 422, body
        assert body["error"]["type"] == "version_failed"
        assert "no weights" in body["error"]["message"]
        assert gw.config_path.read_text() == before  # the file says what is served
        assert (await call(http, gw, "latest"))[1]["release"]["model_version_number"] == 1
        lines = audit.read_from(gw.config_path.parent / "audit.jsonl")
        failed = [x for x in lines if x.action == "publish" and x.result == "failed"]
        assert len(failed) == 1 and "no weights" in failed[0].details
        # a function the script does not define: refused before the file is touched
        status, body = await publish(http, gw, archive(), function="nope")
        assert status == 422 and "nope is not defined" in body["error"]["message"], body
        status, body = await publish(http, gw, archive(), script="src/missing.py")
        assert status == 422 and "src/missing.py" in body["error"]["message"], body
        assert gw.config_path.read_text() == before
    finally:
        await gw.stop()


def _link(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _device(name):
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    return info, None


def _file(name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


async def test_bad_archives_are_refused_with_nothing_written(tmp_path, http):
    gw = await start(tmp_path, settings="  snapshot_max_bytes: 100000\n"
                                        "  publish_max_bytes: 50000\n")
    try:
        before, state = gw.config_path.read_text(), stored(gw)
        cases = [
            ("absolute", archive(members=[_file("/tmp/evil.py", b"x")]), 400, "absolute"),
            ("dotdot", archive(members=[_file("../evil.py", b"x")]), 400, "`..`"),
            ("link out", archive(members=[_link("data/passwd", "../../etc/passwd")]), 400,
             "outside the project"),
            ("absolute link", archive(members=[_link("data/passwd", "/etc/passwd")]), 400,
             "outside the project"),
            ("hard link out", archive(members=[_link("data/h", "../x", tarfile.LNKTYPE)]), 400,
             "outside the project"),
            ("through a link", archive(members=[_link("up", ".."), _file("up/evil.py", b"x")]),
             400, "outside the project"),
            ("device", archive(members=[_device("data/null")]), 400, "device file"),
            # a bomb: a tiny body that unpacks past snapshot_max_bytes
            ("bomb", archive(members=[_file("data/zeros", bytes(10**6))]), 413,
             "snapshot_max_bytes"),
            ("compressed", os.urandom(60000), 413, "publish_max_bytes"),
            ("not gzip", b"plain text, not an archive", 400, "not a tar.gz"),
        ]
        for what, body, status, says in cases:
            got, answer = await publish(http, gw, body)
            assert got == status, (what, answer)
            assert says in answer["error"]["message"], (what, answer)
            assert gw.config_path.read_text() == before, what
            assert stored(gw) == state, what
        # the wrong content type, an unknown model, a user's token: refused before reading
        got, answer = await publish(http, gw, archive(), headers={
            **ADMIN_H, "Content-Type": "application/octet-stream"})
        assert (got, answer["error"]["type"]) == (415, "unsupported_media_type"), answer
        got, answer = await publish(http, gw, archive(), model="nope")
        assert (got, answer["error"]["type"]) == (404, "not_found"), answer
        got, answer = await publish(http, gw, archive(), headers={
            "Authorization": f"Bearer {USER}", "Content-Type": "application/gzip"})
        assert (got, answer["error"]["type"]) == (403, "forbidden"), answer
        got, answer = await publish(http, gw, archive(), headers={
            "Content-Type": "application/gzip"})
        assert got == 401, answer
        got, answer = await publish(http, gw, archive(), script="../proj/predict.py")
        assert got == 400, answer
        assert gw.config_path.read_text() == before and stored(gw) == state
    finally:
        await gw.stop()


async def test_promote_rollback_unpublish_through_http(tmp_path, http):
    gw = await start(tmp_path, routing="advanced")
    try:
        assert (await publish(http, gw, archive()))[0] == 201
        assert (await publish(http, gw, archive({"src/predict.py": PREDICT,
                                                  "data/weight.txt": "three"})))[0] == 201
        assert (await call(http, gw, "prod"))[1]["result"]["weight"] == "one"
        url = f"{gw.url}/admin/models/m"
        async with http.post(f"{url}/promote", json={"version": 3}, headers=ADMIN_H) as resp:
            body = await resp.json()
        assert resp.status == 200, body
        assert (body["production_before"], body["production"]) == (1, 3)
        assert (await call(http, gw, "prod"))[1]["result"]["weight"] == "three"
        async with http.post(f"{url}/promote", json={"version": 2}, headers=ADMIN_H) as resp:
            assert resp.status == 200
        async with http.post(f"{url}/rollback", headers=ADMIN_H, json={}) as resp:
            body = await resp.json()
        assert resp.status == 200 and body["production"] == 3, body
        assert (await call(http, gw, "prod"))[1]["result"]["weight"] == "three"
        # the promoted version cannot be unpublished: 409 saying what to do
        async with http.post(f"{url}/versions/3/unpublish", headers=ADMIN_H, json={}) as resp:
            body = await resp.json()
        assert resp.status == 409 and "promote another version" in body["error"]["message"]
        async with http.post(f"{url}/versions/2/unpublish", headers=ADMIN_H, json={}) as resp:
            assert resp.status == 200, await resp.json()
        assert (await call(http, gw, 2))[0] == 404
        async with http.post(f"{url}/versions/9/unpublish", headers=ADMIN_H, json={}) as resp:
            assert resp.status == 404
        async with http.post(f"{url}/promote", json={"version": 9}, headers=ADMIN_H) as resp:
            assert resp.status == 404
        async with http.post(f"{url}/promote", data=b'{"version": 1}',
                             headers={**ADMIN_H, "Content-Type": "text/plain"}) as resp:
            assert resp.status == 415
        async with http.post(f"{url}/promote", json={"v": 1}, headers=ADMIN_H) as resp:
            assert resp.status == 400
        async with http.post(f"{url}/promote", json={"version": 3}, headers=ADMIN_H) as resp:
            assert resp.status == 200 and (await resp.json())["changed"] is False
        async with http.get(f"{url}/versions", headers=ADMIN_H) as resp:
            states = {v["number"]: v["state"] for v in (await resp.json())["versions"]}
        assert states == {1: "serving", 2: "unpublished", 3: "serving"}
        lines = [(x.actor, x.action, x.version, x.before, x.after)
                 for x in audit.read_from(gw.config_path.parent / "audit.jsonl")
                 if x.action in audit.VERSION_ACTIONS]
        assert lines == [("ops", "publish", 2, 1, 1), ("ops", "publish", 3, 1, 1),
                         ("ops", "promote", 3, 1, 3), ("ops", "promote", 2, 3, 2),
                         ("ops", "rollback", 3, 2, 3), ("ops", "unpublish", 2, 3, 3)]
    finally:
        await gw.stop()


async def test_two_publishes_at_once_both_land_with_distinct_numbers(tmp_path, http):
    gw = await start(tmp_path)
    try:
        bodies = [archive({"src/predict.py": PREDICT, "data/weight.txt": w})
                  for w in ("a", "b", "c")]
        answers = await asyncio.gather(*(publish(http, gw, b) for b in bodies))
        assert [s for s, _ in answers] == [201, 201, 201], answers
        numbers = sorted(a["version"] for _, a in answers)
        assert numbers == [2, 3, 4]
        assert sorted(versions_in(gw)) == [1, 2, 3, 4]  # no edit lost
        for _, answer in answers:
            weight = (await call(http, gw, answer["version"]))[1]["result"]["weight"]
            assert answer["snapshot"] == versions_in(gw)[answer["version"]]["snapshot"]
            assert weight in ("a", "b", "c")
    finally:
        await gw.stop()


async def test_a_read_only_config_answers_409_naming_the_setting(tmp_path, http):
    require_root("a read-only bind mount")
    gw = await start(tmp_path, routing="advanced")
    directory = gw.config_path.parent
    subprocess.run(["mount", "--bind", str(directory), str(directory)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(directory)], check=True)
        status, body = await publish(http, gw, archive())
        assert status == 409 and body["error"]["type"] == "config_read_only", body
        assert "readOnly: false" in body["error"]["message"]
        async with http.post(f"{gw.url}/admin/models/m/promote", json={"version": 1},
                             headers=ADMIN_H) as resp:
            assert resp.status == 409
    finally:
        subprocess.run(["umount", str(directory)], check=True)
        await gw.stop()
