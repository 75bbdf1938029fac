"""The container image, built with podman and run for real: it serves the demo's Python and R
models, refuses a call without a token, passes its own HEALTHCHECK, and on SIGTERM finishes the
calls in flight and exits 0. Its final stage holds no compiler and no test tool.

How it runs (`make test` installs podman and the rest with scripts/system-deps.sh):
- podman reads deploy/podman/containers.conf (``CONTAINERS_CONF``): runc, and limits the
  machine allows (crun fails on both here);
- the Dockerfile's base image is used when present, pulled when possible, and otherwise
  replaced by a stand-in made from the Debian archive (scripts/stand-in-base.sh), since image
  registries cannot be reached from CI; the build then runs with ``--pull=never``;
- the build log goes to tests/artifacts/image-build.log, and its tail into the failure;
- the container publishes a free port on 127.0.0.1 only and is removed afterwards, whatever
  happened. The image stays, tagged modelgate-test, so the next run reuses its layers.

Without podman these tests FAIL, because `make test` is meant to prove the image too. To skip
them on a machine that cannot run containers (no root, say), set
``MODELGATE_TEST_SKIP_IMAGE=1``.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from conftest import ROOT, free_port

if os.environ.get("MODELGATE_TEST_SKIP_IMAGE") == "1":
    pytest.skip("MODELGATE_TEST_SKIP_IMAGE=1: the image is not built", allow_module_level=True)

# Building cold takes minutes (Debian packages, wheels, rpy2's compilation); every step below
# has its own bound, and this one covers a test with the fixtures it starts.
pytestmark = pytest.mark.timeout(2700)

TAG = "localhost/modelgate-test:latest"
CONTAINERS_CONF = ROOT / "deploy" / "podman" / "containers.conf"
ARTIFACTS = ROOT / "tests" / "artifacts"
BUILD_LOG = ARTIFACTS / "image-build.log"
TOKEN = "demo-token"
# /metrics shows a restricted model's series to admin tokens only, and the demo has none: the
# container serves the demo config with this one token added (the image, code and models are
# the image's own; the config directory is a copy mounted over the image's).
ADMIN_TOKEN = "image-test-admin-token"
DEMO = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())


def podman_env(tmp: Path) -> dict[str, str]:
    """The environment podman runs in: our containers.conf, with nofile lowered to the hard
    limit of this machine when that is below the file's (setrlimit refuses more)."""
    conf = CONTAINERS_CONF
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 20000:
        conf = tmp / "containers.conf"
        conf.write_text(CONTAINERS_CONF.read_text().replace(
            "nofile=20000:20000", f"nofile={hard}:{hard}"))
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


class Podman:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def check(self, *args: str, timeout: float = 60) -> str:
        result = self(*args, timeout=timeout)
        assert result.returncode == 0, f"podman {' '.join(args)}:\n{result.stderr}"
        return result.stdout.strip()


def base_image() -> str:
    """The FROM of the Dockerfile's stages (all share it), fully qualified as podman names it."""
    froms = {line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines()
             if line.startswith("FROM ")}
    assert len(froms) == 1, f"the stages start from different images: {froms}"
    name = froms.pop()
    first = name.split("/")[0]
    if "/" not in name:
        return f"docker.io/library/{name}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{name}"
    return name


def ensure_base(podman: Podman) -> str:
    """Present, pulled, or a stand-in built from the Debian archive: what the build will use."""
    base = base_image()
    if podman("image", "exists", base).returncode == 0:
        return "present"
    try:
        if podman("pull", "--quiet", base, timeout=180).returncode == 0:
            return "pulled"
    except subprocess.TimeoutExpired:
        pass  # a registry that does not answer: as good as none
    try:
        result = subprocess.run(["bash", str(ROOT / "scripts" / "stand-in-base.sh"), base],
                                env=podman.env, capture_output=True, text=True, timeout=1200,
                                check=False)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"building the stand-in base image took over {e.timeout} s")
    assert result.returncode == 0, (
        f"{base} cannot be pulled, and the stand-in failed:\n{result.stdout}{result.stderr}")
    return "stand-in"


def build(podman: Podman) -> str:
    """Build the image (layers cached between runs) and return its id; the log is kept."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    previous = podman("image", "inspect", "--format", "{{.Id}}", TAG).stdout.strip()
    command = ["podman", "build", "--format", "docker", "--pull=never", "--layers",
               "--tag", TAG, "--file", str(ROOT / "Dockerfile"), str(ROOT)]
    with BUILD_LOG.open("w") as log:
        try:
            code = subprocess.run(command, env=podman.env, stdout=log, stderr=subprocess.STDOUT,
                                  timeout=1800, check=False).returncode
            outcome = f"exit code {code}"
        except subprocess.TimeoutExpired:
            code, outcome = -1, "timed out after 1800 s"
    if code != 0:
        tail = "".join(BUILD_LOG.read_text(errors="replace").splitlines(True)[-80:])
        pytest.fail(f"podman build failed ({outcome}); the whole log is {BUILD_LOG}, "
                    f"its end:\n{tail}")
    image_id = podman.check("image", "inspect", "--format", "{{.Id}}", TAG)
    if previous and previous != image_id:
        podman("rmi", previous)  # the image this one replaces; refused (fine) while in use
    return image_id


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: scripts/system-deps.sh (run by `make test`) "
                    "installs it; set MODELGATE_TEST_SKIP_IMAGE=1 to skip the image tests")
    return Podman(podman_env(tmp_path_factory.mktemp("podman")))


@pytest.fixture(scope="module")
def image(podman: Podman) -> str:
    ensure_base(podman)
    return build(podman)


class Container:
    """One `podman run -d` of the image, on a free port of 127.0.0.1."""

    def __init__(self, podman: Podman, image: str, configs: Path) -> None:
        self.podman = podman
        self.name = f"modelgate-test-{uuid.uuid4().hex[:12]}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.image = image
        self.configs = configs

    def start(self) -> None:
        self.podman.check("run", "--detach", "--name", self.name,
                          "--publish", f"127.0.0.1:{self.port}:8000",
                          "--volume", f"{self.configs}:/srv/modelgate/configs",
                          self.image, timeout=120)

    def status(self) -> str:
        return self.podman.check("container", "inspect", "--format", "{{.State.Status}}",
                                 self.name)

    def logs(self) -> str:
        result = self.podman("logs", "--tail", "60", self.name)
        return result.stdout + result.stderr

    def remove(self) -> None:
        self.podman("rm", "--force", "--time", "5", self.name)

    async def wait_ready(self, http: aiohttp.ClientSession, timeout: float = 180) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                async with http.get(f"{self.url}/readyz",
                                    timeout=aiohttp.ClientTimeout(total=5)) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            status = self.status()
            assert status == "running", f"the container is {status}:\n{self.logs()}"
            assert loop.time() < deadline, f"not ready after {timeout} s:\n{self.logs()}"
            await asyncio.sleep(0.5)


def demo_configs_with_an_admin(directory: Path) -> Path:
    """The repository's configs/ with ADMIN_TOKEN added to the demo, in a directory the
    image's user (uid 10001) may write: it keeps its snapshots, audit log and database there."""
    shutil.copytree(ROOT / "configs", directory, ignore=shutil.ignore_patterns(
        ".modelgate", "audit.jsonl", "async.sqlite3*", "*.pid"))
    demo = yaml.safe_load((directory / "demo.yaml").read_text())
    demo["tokens"]["image-test-admin"] = {
        "sha256": hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest(), "admin": True}
    (directory / "demo.yaml").write_text(yaml.safe_dump(demo, sort_keys=False))
    for path in (directory, *directory.iterdir()):
        path.chmod(0o777 if path.is_dir() else 0o666)
    return directory


@pytest.fixture(scope="module")
def container(podman: Podman, image: str,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    configs = demo_configs_with_an_admin(tmp_path_factory.mktemp("image") / "configs")
    running = Container(podman, image, configs)
    try:
        running.start()
        yield running
    finally:
        running.remove()


@pytest.fixture
async def ready(container: Container, http: aiohttp.ClientSession) -> Container:
    await container.wait_ready(http)
    return container


def wines(count: int) -> tuple[list[list[float]], list[int]]:
    """The first wines of the demo's (synthetic, deterministic) data set, which the image's
    models were trained on: their features, and their quality."""
    path = ROOT / "examples" / "wine" / "make_data.py"
    spec = importlib.util.spec_from_file_location("wine_make_data_for_image", path)
    assert spec is not None and spec.loader is not None
    make_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_data)
    data = make_data.generate()[:count]
    return [[float(x) for x in row[:11]] for row in data], [int(row[11]) for row in data]


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def call(http: aiohttp.ClientSession, url: str, body: dict[str, Any],
               headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with http.post(url, json=body, headers=headers,
                         timeout=aiohttp.ClientTimeout(total=60)) as response:
        return response.status, await response.json(content_type=None)


def test_the_final_stage_has_no_compiler_nor_test_tools_and_keeps_its_healthcheck(podman, image):
    inspected = json.loads(podman.check("image", "inspect", image))[0]
    assert inspected["Config"]["User"] == "10001"
    assert "/healthz" in " ".join(inspected["Healthcheck"]["Test"])  # --format docker kept it
    assert inspected["Config"]["StopSignal"] == "SIGTERM"
    probe = ("command -v gcc cc g++ make; "
             "python -c 'import pytest' 2>/dev/null && echo pytest; "
             "python -c 'import uv' 2>/dev/null && echo uv; true")
    found = podman.check("run", "--rm", "--entrypoint", "sh", image, "-c", probe, timeout=120)
    assert found == "", f"in the final stage: {found}"


async def test_the_container_serves_the_python_and_the_r_demo_model(ready, http):
    assert DEMO["models"]["wine-quality"]["versions"][1]["language"] == "python"
    assert DEMO["models"]["wine-quality"]["versions"][2]["language"] == "r"
    features, qualities = wines(40)
    model = f"{ready.url}/models/wine-quality"
    for version in (1, 2):
        status, body = await call(http, f"{model}/{version}/model",
                                  {"parameters": [features]}, auth())
        assert status == 200, body
        assert body["release"]["model_version_number"] == version
        predicted = body["result"]
        assert len(predicted) == len(qualities) and set(predicted) <= set(range(3, 9))
        # Trained on these wines, a forest gets most of them right; a constant answer would not.
        right = sum(p == q for p, q in zip(predicted, qualities))
        assert right >= 0.6 * len(qualities), (version, predicted, qualities)
        assert len(set(predicted)) > 1, predicted
    status, body = await call(http, f"{model}/latest/model",
                              DEMO["models"]["wine-quality"]["example"], auth())
    assert status == 200 and body["release"]["model_version_number"] == 2, body
    assert body["result"] in range(3, 9)
    status, body = await call(http, f"{ready.url}/models/sum/latest/model",
                              {"parameters": [1, 2, 3.5]})
    assert (status, body["result"]) == (200, 6.5), body


async def test_a_call_without_a_token_or_with_a_wrong_one_is_refused_401(ready, http):
    url = f"{ready.url}/models/wine-quality/latest/model"
    body = DEMO["models"]["wine-quality"]["example"]
    assert (await call(http, url, body))[0] == 401
    assert (await call(http, url, body, auth("not-the-demo-token")))[0] == 401


async def test_the_image_healthcheck_passes(ready):
    result = ready.podman("healthcheck", "run", ready.name, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr + ready.logs()


async def r_calls_at_the_gateway(http: aiohttp.ClientSession, url: str) -> tuple[int, int]:
    """Calls of the R demo model answered so far, and those inside the gateway now (handed to
    a worker, or queued for one), from /metrics."""
    async with http.get(f"{url}/metrics", headers=auth(ADMIN_TOKEN)) as response:
        text = await response.text()
    answered = waiting = 0
    for line in text.splitlines():
        if 'model="wine-quality"' in line and 'version="2"' in line:
            name, value = line.split("{", 1)[0], int(float(line.rsplit(" ", 1)[1]))
            if name == "modelgate_requests_total":
                answered += value
            elif name in ("modelgate_calls_in_flight", "modelgate_queue_depth"):
                waiting += value
    return answered, waiting


async def test_sigterm_finishes_the_calls_in_flight_and_exits_0(ready, http):
    # Runs last in this module: it stops the module's container.
    features, _ = wines(1599)
    body = {"parameters": [features * 10]}  # ~0.4 s of R a call; 12 calls keep 2 workers busy
    url = f"{ready.url}/models/wine-quality/2/model"
    before, _ = await r_calls_at_the_gateway(http, ready.url)
    calls = [asyncio.create_task(call(http, url, body, auth())) for _ in range(12)]
    # SIGTERM once every call has reached the gateway (not while one is still connecting,
    # which the stop rightly refuses) and while some are still waiting for their answer.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        answered, waiting = await r_calls_at_the_gateway(http, ready.url)
        if answered - before + waiting == len(calls) and waiting > 0:
            break
        assert answered - before < len(calls), "every call was answered before the SIGTERM"
        assert loop.time() < deadline, f"the calls did not reach the gateway:\n{ready.logs()}"
        await asyncio.sleep(0.02)
    ready.podman.check("kill", "--signal", "TERM", ready.name)
    results = await asyncio.wait_for(asyncio.gather(*calls), 60)
    assert [status for status, _ in results] == [200] * len(calls), [s for s, _ in results]
    assert all(len(answer["result"]) == len(features) * 10 for _, answer in results)
    code = ready.podman.check("wait", ready.name, timeout=60)
    assert code == "0", f"exit code {code} ({waiting} calls were waiting):\n{ready.logs()}"
