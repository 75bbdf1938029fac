"""Starts and stops the servers a scenario compares, each on a free port of 127.0.0.1."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"  # git-ignored
PR_SET_PDEATHSIG = 1
SETTLE_S = 30.0  # how long a contender that answers may take to answer 200


class Contender(msgspec.Struct, frozen=True):
    """One server of a scenario; a new ``kind`` is one more branch of ``_command``."""

    name: str
    kind: str  # modelgate, ceiling, plumber, mlserver, bentoml or litserve
    path: str  # the URL path that is called
    config: str = ""  # modelgate: the deployment file, relative to the repository
    source: str = ""  # modelgate: another checkout (relative), served from there (bench.ab)
    # modelgate: serve ``config`` itself, not a copy (a scenario that edits it while serving)
    config_as_is: bool = False
    script: str = ""  # ceiling: serve this script's `function` instead of the sum
    function: str = ""
    token: str = ""
    body: object = None  # this contender's request body, when it speaks another protocol
    # mlserver, bentoml, litserve: adaptive batching (max 32 calls); modelgate: the version
    # called batches (its config says how), so the report leaves out the model-bound limit
    batched: bool = False


def free_port() -> int:
    """A free port whose next two are free too (MLServer needs three)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        try:
            for extra in (1, 2):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port + extra))
            return port
        except OSError:
            continue


def launch_directory(contender: Contender) -> Path:
    """Where ``contender`` starts: its checkout, for one served from another (``python -m``
    puts the working directory first on sys.path, before PYTHONPATH: started here, it would
    import this tree's code, and an A/B would compare this tree with itself)."""
    return ROOT / contender.source if contender.source else ROOT


def _command(contender: Contender, port: int) -> tuple[list[str], dict[str, str]]:
    """The command line starting ``contender`` on ``port``, and its extra environment."""
    if contender.kind in ("bentoml", "litserve"):
        from bench import peers

        return peers.command(contender.kind, port, contender.batched)
    if contender.source:  # its gateway and workers import that checkout's code
        return _plain_command(contender, port), {"PYTHONPATH": str(ROOT / contender.source)}
    return _plain_command(contender, port), {}


def served_copy(config: Path, name: str) -> Path:
    """What a modelgate contender serves for ``config``: a copy under bench/.work/served/, its
    scripts and projects made absolute, without snapshots (the scripts are served as they are
    now). Serving a file records the snapshots it took in it (and keeps them in a store beside
    it): the copy takes that, not the committed file (nor bench.ab's export of a revision,
    whose recorded snapshots are not in any store)."""
    config = config.resolve()
    doc = yaml.safe_load(config.read_text())
    for model in (doc.get("models") or {}).values():
        for entry in [model, *(model.get("versions") or {}).values()]:
            for key in ("script", "project"):
                if isinstance(entry, dict) and isinstance(entry.get(key), str):
                    entry[key] = str((config.parent / entry[key]).resolve())
            if isinstance(entry, dict) and entry is not model:
                entry.pop("snapshot", None)
    copy = WORK / "served" / name / config.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text(yaml.safe_dump(doc, sort_keys=False))
    return copy


def _plain_command(contender: Contender, port: int) -> list[str]:
    if contender.kind == "modelgate":
        config = ROOT / contender.config
        if not contender.config_as_is:
            config = served_copy(config, contender.name)
        return [sys.executable, "-m", "gateway.cli", "serve", str(config),
                "--listen", f"127.0.0.1:{port}", "--json-logs"]
    if contender.kind == "ceiling":
        extra = [str(ROOT / contender.script), contender.function] if contender.script else []
        return [sys.executable, "-m", "bench.ceiling", str(port), *extra]
    if contender.kind == "plumber":
        return ["Rscript", str(ROOT / "bench" / "plumber" / "serve.R"), str(port)]
    if contender.kind == "mlserver":
        from bench import mlserver

        repository = mlserver.model_repository(port, contender.batched)
        return [str(mlserver.executable()), "start", str(repository)]
    raise ValueError(f"unknown contender kind {contender.kind}")


def _get(url: str, body: bytes | None = None, token: str = "") -> tuple[int, bytes]:
    """Status and body of one call; (0, reason) when nothing answers (yet)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        return 0, str(exc).encode()


def _all_workers_up(answer: bytes) -> bool:
    versions = msgspec.json.decode(answer).get("versions", {})
    return all(v.get("workers_ready", 0) >= v.get("workers", 0) for v in versions.values())


def _wait_until_serving(contender: Contender, port: int, body: bytes,
                        process: subprocess.Popen[bytes], deadline: float) -> str:
    """Wait until the contender serves, then check that it answers ``body`` with 200.

    modelgate: ``GET /readyz`` answers 200 with every worker of every version up. Others:
    ``body`` answered with 200; some answer before their model is loaded (MLServer: 400 "not
    ready yet"), so other answers are waited out for ``SETTLE_S``. A contender that still does
    not answer 200 then (a wrong route or body in the scenario) fails, with its answer, rather
    than being measured."""
    base = f"http://127.0.0.1:{port}"
    url = base + contender.path
    first_answer = None
    while True:
        if contender.kind == "modelgate":
            status, answer = _get(f"{base}/readyz")
            up = status == 200 and _all_workers_up(answer)
        else:
            status, answer = _get(url, body, contender.token)
            up = status == 200
            if status != 0 and first_answer is None:
                first_answer = time.monotonic()
            if not up and first_answer is not None and time.monotonic() > first_answer + SETTLE_S:
                break  # answers, but not with 200: reported below
        if up:
            break
        if process.poll() is not None or time.monotonic() > deadline:
            state = "timed out" if process.poll() is None else f"exited {process.poll()}"
            raise RuntimeError(f"{contender.name} did not start ({state})")
        time.sleep(0.1)
    status, answer = _get(url, body, contender.token)
    if status != 200:
        raise RuntimeError(f"{contender.name} answers {url} with {status}: {answer[:300]!r}")
    return url


def exit_with_parent(sig: int = signal.SIGTERM) -> None:
    """In a child before exec: receive ``sig`` when the harness dies, even by SIGKILL."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)
    except (OSError, AttributeError):
        pass


def _own_session() -> None:
    """In a contender before exec: a new session (Ctrl-C on the terminal reaches the harness
    only, which then stops its contenders in order), and SIGTERM if the harness dies."""
    os.setsid()
    exit_with_parent()


def _stop(process: subprocess.Popen[bytes], grace: float = 30) -> None:
    """SIGTERM to the contender's process group (it drains and stops its pools); when it is
    not gone after ``grace`` seconds, or on a second Ctrl-C, SIGKILL to it and to every
    process it had started (pools may sit in sessions of their own)."""
    family = descendants(process.pid)
    stopped = False
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(grace)
        stopped = True
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    finally:
        for pid in [] if stopped else [process.pid, *family]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()


@contextmanager
def running(contender: Contender, body: bytes,
            timeout: float = 180) -> Iterator[tuple[str, int]]:
    """Start ``contender`` on a free port, wait until it serves ``body`` with 200, yield its
    URL and pid, then stop it and everything it started. Its stdout (modelgate's JSON request
    lines) goes to /dev/null; its stderr to a log under bench/.work/, kept (and named in the
    error) only when it fails to start or to be measured."""
    port = free_port()
    WORK.mkdir(exist_ok=True)
    log = WORK / f"{contender.name}-{port}.log"
    with log.open("wb") as output:
        argv, env = _command(contender, port)
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, env={**os.environ, **env},
                                   stdout=subprocess.DEVNULL, stderr=output,
                                   cwd=launch_directory(contender), preexec_fn=_own_session)
    keep_log = False
    try:
        try:
            url = _wait_until_serving(contender, port, body, process,
                                      time.monotonic() + timeout)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; its output is in {log}") from None
        yield url, process.pid
    except Exception:
        keep_log = True
        raise
    finally:
        _stop(process)
        if not keep_log:
            log.unlink(missing_ok=True)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of one process in MB."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        fields = {line.split(":")[0]: int(line.split()[1]) for line in f
                  if line.rstrip().endswith(" kB")}
    return fields.get("Rss", 0) / 1024, fields.get("Pss", 0) / 1024
