"""Fixtures that run the real thing: a ``modelgate serve`` process with real worker pools.

``gateway_factory`` writes a config to a temporary directory, starts the gateway on a free
port, waits for its ``serving`` log event (not a sleep), and stops it at teardown; the gateway's
JSON log lines are collected for assertions.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import os
import pwd
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import msgspec
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
TEST_MODELS = Path(__file__).resolve().parent / "models"
EXAMPLES = ROOT / "examples"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningGateway:
    url: str
    process: asyncio.subprocess.Process
    config_path: Path
    log_lines: list[dict[str, Any]] = field(default_factory=list)
    stderr_lines: list[str] = field(default_factory=list)
    raw_output: list[bytes] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def model_url(self, model: str, label: str | int = "latest") -> str:
        label = "labels/prod" if label == "prod" else label
        return f"{self.url}/models/{model}/{label}/model"

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.log_lines if line.get("event") == name]

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        code = await asyncio.wait_for(self.process.wait(), timeout)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        return code


async def _collect(stream: asyncio.StreamReader, gw: RunningGateway, json_lines: bool,
                   serving: asyncio.Event) -> None:
    while line := await stream.readline():
        gw.raw_output.append(line)
        if json_lines:
            try:
                event = msgspec.json.decode(line)
            except msgspec.DecodeError:
                continue
            if isinstance(event, dict):
                gw.log_lines.append(event)
                if event.get("event") == "serving":
                    serving.set()
        else:
            gw.stderr_lines.append(line.decode(errors="replace"))
    serving.set()  # the process ended: stop waiting


async def start_gateway(directory: Path, config: dict[str, Any] | str,
                        env: dict[str, str] | None = None,
                        startup_timeout: float = 90) -> RunningGateway:
    """Write ``config`` (a dict or YAML text) to ``directory`` and serve it."""
    directory.mkdir(parents=True, exist_ok=True)
    open_to_workers(directory)
    config_path = directory / "deployment.yaml"
    text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
    config_path.write_text(text)
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "serve", str(config_path),
        "--listen", f"127.0.0.1:{port}", "--json-logs",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})}, cwd=str(directory),
        limit=2**20,
    )
    gw = RunningGateway(f"http://127.0.0.1:{port}", process, config_path)
    serving = asyncio.Event()
    assert process.stdout is not None and process.stderr is not None
    gw._tasks = [asyncio.create_task(_collect(process.stdout, gw, True, serving)),
                 asyncio.create_task(_collect(process.stderr, gw, False, serving))]
    try:
        await asyncio.wait_for(serving.wait(), startup_timeout)
    except TimeoutError:
        process.kill()
        raise
    if not gw.events("serving"):  # its output ended first: it exited at start-up
        await gw.stop()
        raise RuntimeError("the gateway exited at start-up:\n" + "".join(gw.stderr_lines))
    return gw


@pytest.fixture
async def gateway_factory(tmp_path: Path) -> AsyncIterator[Any]:
    """Start gateways for one test: ``await gateway_factory(config_dict)``."""
    started: list[RunningGateway] = []

    async def factory(config: dict[str, Any] | str, **kwargs: Any) -> RunningGateway:
        gw = await start_gateway(tmp_path / f"gw{len(started)}", config, **kwargs)
        started.append(gw)
        return gw

    yield factory
    for gw in started:
        if gw.process.returncode is None:
            gw.process.kill()
        await gw.process.wait()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


def token_sha256(token: str) -> str:
    """What a config holds of a token: the hex SHA-256 of its value."""
    return hashlib.sha256(token.encode()).hexdigest()


def version(script: Path | str, function: str, **options: Any) -> dict[str, Any]:
    """One version entry of a config, with an absolute script path."""
    language = "r" if str(script).endswith(".R") else "python"
    return {"language": language, "script": str(script), "function": function, **options}


def make_keys(directory: Path, *others: str) -> None:
    """CURVE key pairs in ``directory`` (``modelgate keys new``): the gateway's, an authorized
    ``worker``'s (copied into ``directory/authorized``) and one per name in ``others``, which
    is not authorized."""
    (directory / "authorized").mkdir(parents=True)
    for name in ("gateway", "worker", *others):
        subprocess.run([sys.executable, "-m", "gateway.cli", "keys", "new", name, "--dir",
                        str(directory)], check=True, capture_output=True, timeout=60)
    shutil.copy(directory / "worker.key", directory / "authorized" / "worker.key")


def require(module: str, opt_out: str) -> ModuleType:
    """Import ``module``, which ``make test`` installs: a missing one fails the test run, loudly.
    Only ``MODELGATE_TEST_SKIP_<WHAT>=1`` (``opt_out``) turns that into a skip, and says so."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        problem = str(exc)
    if os.environ.get(opt_out) == "1":
        pytest.skip(f"{module} is missing and {opt_out}=1", allow_module_level=True)
    pytest.fail(f"{module} cannot be imported ({problem}); `make test` installs it. Set "
                f"{opt_out}=1 to skip these tests on purpose.", pytrace=False)


def as_unprivileged(check: Callable[[], None], user: str = "nobody",
                    timeout: float = 60.0) -> None:
    """Run ``check`` as an unprivileged user: as root, in a forked child that gives up root
    (supplementary groups, gid, uid) first, so that file modes hold for real; otherwise, here.
    A failure in the child is raised here with the child's traceback; a child still silent
    after ``timeout`` seconds is killed."""
    if os.geteuid() != 0:
        check()
        return
    account = pwd.getpwnam(user)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)
            assert os.geteuid() == account.pw_uid and os.getegid() == account.pw_gid
            check()
        except BaseException:
            code = 1
            os.write(write_end, traceback.format_exc().encode())
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as child_output:
        if not select.select([child_output], [], [], timeout)[0]:  # nothing, not even EOF
            os.kill(pid, signal.SIGKILL)
        report = child_output.read().decode(errors="replace")  # EOF: the child has exited
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"as {user}:\n{report or 'killed'}"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """As root, this session's temporary directories go under one of its own in /tmp: the
    gateways' pools run as ``nobody`` and must enter them (:func:`open_to_workers`), and pytest
    makes its shared ``/tmp/pytest-of-root`` private again whenever another session starts."""
    if os.geteuid() == 0 and config.option.basetemp is None:
        config.option.basetemp = _SESSION_TEMP[0] = tempfile.mkdtemp(prefix="modelgate-tests-")


_SESSION_TEMP: list[str] = [""]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The session's own temporary directory goes when every test passed (kept to look into
    otherwise, like pytest's own)."""
    if _SESSION_TEMP[0] and exitstatus == 0:
        shutil.rmtree(_SESSION_TEMP[0], ignore_errors=True)


def require_root(why: str) -> None:
    """Fail unless root (``make test`` runs as root), or skip when
    ``MODELGATE_TEST_SKIP_ROOT=1`` asks for it: ``why`` says what needs root."""
    if os.geteuid() == 0:
        return
    if os.environ.get("MODELGATE_TEST_SKIP_ROOT") != "1":
        pytest.fail(f"{why} needs root: run `make test` as root, or set "
                    "MODELGATE_TEST_SKIP_ROOT=1 to skip this test on purpose", pytrace=False)
    pytest.skip(f"{why} needs root; MODELGATE_TEST_SKIP_ROOT=1")


def open_to_workers(directory: Path) -> None:
    """As root, let other users enter ``directory`` and the directories above it that are ours
    (pytest makes them 0700): a root gateway's pools run as ``nobody`` and read the snapshots
    kept beside the config, as in a real deployment. Entering only: nothing becomes listable."""
    if os.geteuid() != 0:
        return
    for path in (directory, *directory.parents):
        info = path.stat()
        if info.st_uid == 0 and not info.st_mode & stat.S_IXOTH:
            path.chmod(stat.S_IMODE(info.st_mode) | stat.S_IXOTH)


@pytest.fixture
def exchange_dir(tmp_path: Path) -> Path:
    """A directory that the test and its models' workers (``nobody`` under a root gateway)
    both write: files a model leaves for the test to count, files the test leaves to release
    a held call."""
    directory = tmp_path / "exchange"
    directory.mkdir()
    directory.chmod(0o777)
    open_to_workers(directory)
    return directory


def world_readable_dir(prefix: str) -> Path:
    """A fresh directory under /tmp that any user can enter and read (pytest's ``tmp_path`` is
    inside a directory only its owner may enter); removed by the caller."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    directory.chmod(0o755)
    return directory


async def eventually(check: Callable[[], Awaitable[bool]], what: str,
                     timeout: float = 30.0, interval: float = 0.05) -> None:
    """Poll ``check`` until it is true; fail naming ``what`` when ``timeout`` passes first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, f"{what}: not within {timeout:g} s"
        await asyncio.sleep(interval)


async def metric(http: aiohttp.ClientSession, gw: RunningGateway, name: str,
                 **labels: str) -> float:
    """The value of one sample of the gateway's /metrics (0 when it is not there)."""
    async with http.get(f"{gw.url}/metrics") as resp:
        text = await resp.text()
    wanted = {f'{k}="{v}"' for k, v in labels.items()}
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        series, _, rest = head.partition("{")
        if series == name and wanted <= set(rest.rstrip("}").split(",")):
            return float(value)
    return 0.0
