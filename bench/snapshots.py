"""``python -m bench.snapshots``: what versions-as-snapshots cost (issue 14). Not a test.

1. **Publish** a project holding a 300 MB model file (``BENCH_MB``) into a fresh store: time
   and disk added, then a second publish of the unchanged project (nothing read or written:
   each file's hash is remembered with its stat), then one after a small file changed (the
   big file is neither read nor copied again).
2. **Environments**: a small environment (one pure-Python package and the worker runtime)
   built cold with an empty uv cache, cold with uv's cache warm, and warm (already built).
3. **Start-up** of 20 Python versions (one worker each) from snapshots, against the gateway
   before snapshots (the commit before them, from ``git archive``, run on the same venv):
   the first serve (it takes the snapshots), then a restart (they are recorded).

Everything happens under bench/.work/ (git-ignored); figures go to stdout as a markdown table.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from bench.contenders import ROOT, WORK
from gateway.config import parse
from gateway.environments import build
from gateway.snapshots import Store, prepare

MB = int(os.environ.get("BENCH_MB", "300"))
BEFORE_SNAPSHOTS = os.environ.get("BENCH_BASELINE", "98550fc")  # the commit before issue 14
VERSIONS = 20
REPEAT = 3
BASICS = ROOT / "examples" / "basics" / "basics.py"


def disk_bytes(root: Path) -> int:
    """Bytes allocated under ``root``, each inode once (hard links are not counted twice)."""
    seen, total = set(), 0
    for directory, _, files in os.walk(root):
        for name in files:
            info = os.lstat(os.path.join(directory, name))
            if info.st_ino not in seen:
                seen.add(info.st_ino)
                total += info.st_blocks * 512
    return total


def timed(fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - started


def publish_costs(work: Path) -> list[tuple[str, float, float]]:
    project = work / "project"
    project.mkdir(parents=True)
    with open(project / "model.bin", "wb") as f:
        for _ in range(MB):
            f.write(os.urandom(1024 * 1024))
    (project / "predict.py").write_text("def predict():\n    return 1\n")
    time.sleep(2.1)  # hashes are remembered for files older than 2 s, as a project's files are
    store = Store(work / "state" / "store")
    rows = []
    for what, change in ((f"first publish ({MB} MB file)", None),
                         ("second publish, nothing changed", None),
                         ("third publish, predict.py changed", "def predict():\n    return 2\n")):
        if change:
            (project / "predict.py").write_text(change)
        before = disk_bytes(store.root) if store.root.exists() else 0
        _, seconds = timed(store.take, project, 10 * 1024**3)
        rows.append((what, seconds, (disk_bytes(store.root) - before) / 1e6))
    return rows


def environment_costs(work: Path) -> list[tuple[str, float]]:
    """Each cold build in a deployment directory (so a state directory) of its own."""
    raw = {"models": {"m": {"versions": {1: {
        "language": "python", "script": "envproject/predict.py", "function": "predict",
        "environment": {"requirements": "requirements.txt"}}}}}}
    rows = []
    for what, directory, empty_cache in (("cold, empty uv cache", "env-a", True),
                                         ("cold, uv cache warm", "env-b", False),
                                         ("warm (built already)", "env-b", False)):
        project = work / directory / "envproject"
        if not project.exists():
            project.mkdir(parents=True)
            (project / "predict.py").write_text("import six\n\ndef predict():\n    return 1\n")
            (project / "requirements.txt").write_text("six==1.16.0\n")
        deployment, _ = prepare(parse(raw, str(work / directory / "deployment.yaml")))
        model = deployment.models["m"]
        saved = os.environ.get("UV_CACHE_DIR")
        with tempfile.TemporaryDirectory(dir=work) as empty:
            if empty_cache:
                os.environ["UV_CACHE_DIR"] = empty
            try:
                _, seconds = timed(build, deployment, model, model.versions[1])
            finally:
                os.environ.pop("UV_CACHE_DIR", None)
                if saved is not None:
                    os.environ["UV_CACHE_DIR"] = saved
        rows.append((what, seconds))
    return rows


def startup(code: Path, directory: Path) -> float:
    """Seconds from ``modelgate serve`` to its ``serving`` line, with 20 versions."""
    config = directory / "deployment.yaml"
    if not config.exists():
        directory.mkdir(parents=True)
        versions = "".join(f"      {n}: {{language: python, script: {BASICS}, function: add}}\n"
                           for n in range(1, VERSIONS + 1))
        config.write_text(f"models:\n  m:\n    access: {{public: true}}\n    versions:\n"
                          f"{versions}")
    env = {**os.environ, "PYTHONPATH": str(code)}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", str(config), "--listen",
         "127.0.0.1:0", "--json-logs"], cwd=code, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    try:
        for line in process.stdout:
            try:
                event = msgspec.json.decode(line)
            except msgspec.DecodeError:
                continue
            if isinstance(event, dict) and event.get("event") == "serving":
                return time.perf_counter() - started
        raise RuntimeError(f"the gateway in {code} exited before serving")
    finally:
        process.terminate()
        process.wait(60)


def startup_costs(work: Path) -> list[tuple[str, float]]:
    baseline = work / "baseline"
    baseline.mkdir()
    archive = subprocess.run(["git", "archive", BEFORE_SNAPSHOTS], cwd=ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive, check=True)
    before = [startup(baseline, work / "start-before") for _ in range(REPEAT)]
    first = startup(ROOT, work / "start-snap")
    again = [startup(ROOT, work / "start-snap") for _ in range(REPEAT)]
    return [
        (f"before snapshots (median of {REPEAT})", statistics.median(before)),
        ("snapshots: first serve (takes 20 snapshots)", first),
        (f"snapshots: restart, recorded (median of {REPEAT})", statistics.median(again)),
    ]


def main() -> int:
    WORK.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="snapshots-", dir=WORK))
    try:
        print(f"## Snapshots ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores)\n")
        print("| publish | seconds | disk added (MB) |\n|---|---:|---:|")
        for what, seconds, added in publish_costs(work):
            print(f"| {what} | {seconds:.3f} | {added:.1f} |")
        print("\n| environment build (six + worker runtime) | seconds |\n|---|---:|")
        for what, seconds in environment_costs(work):
            print(f"| {what} | {seconds:.2f} |")
        print(f"\n| start-up, {VERSIONS} versions, 1 worker each | seconds |\n|---|---:|")
        for what, seconds in startup_costs(work):
            print(f"| {what} | {seconds:.2f} |")
    finally:
        for directory, _, _ in os.walk(work):  # snapshots are read-only
            os.chmod(directory, 0o755)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
