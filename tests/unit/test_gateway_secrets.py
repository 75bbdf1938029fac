"""The gateway's own secrets (issue 15, M1): its process is not dumpable (other processes of
its user cannot read its memory or /proc/<pid>/environ), and the variables it read secrets
from leave its environment, while reloads still find them."""

import os
import subprocess
import sys

from gateway.auth import TokenBook
from gateway.config import (
    CurveSettings,
    Deployment,
    GatewaySettings,
    TokenRef,
    seal_secrets,
    secret_env,
)

PROTECT = """
import ctypes
from gateway.cli.serve import protect_process
from gateway.config import Deployment
libc = ctypes.CDLL(None)
before = libc.prctl(3, 0, 0, 0, 0)
protect_process(Deployment(path="x.yaml"))
print(before, libc.prctl(3, 0, 0, 0, 0))
"""


def test_the_serving_process_makes_itself_non_dumpable():
    out = subprocess.run([sys.executable, "-c", PROTECT], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    assert out == ["1", "0"]  # PR_GET_DUMPABLE: dumpable before, not after


def test_secret_variables_leave_the_environment_and_stay_readable(monkeypatch):
    monkeypatch.setenv("MG_TEST_TOKEN", "s3cret-token")
    monkeypatch.setenv("MG_TEST_HASH", "ab" * 32)
    monkeypatch.setenv("MG_TEST_CURVE", "z85-secret")
    monkeypatch.setenv("MG_TEST_OTHER", "stays")
    deployment = Deployment(
        path="x.yaml",
        tokens={"a": TokenRef(env="MG_TEST_TOKEN"), "b": TokenRef(sha256_env="MG_TEST_HASH")},
        gateway=GatewaySettings(workers_curve=CurveSettings(authorized_keys="k",
                                                            secret_key_env="MG_TEST_CURVE")))
    assert sorted(seal_secrets(deployment)) == ["MG_TEST_CURVE", "MG_TEST_HASH",
                                                "MG_TEST_TOKEN"]
    for name in ("MG_TEST_TOKEN", "MG_TEST_HASH", "MG_TEST_CURVE"):
        assert name not in os.environ
    assert os.environ["MG_TEST_OTHER"] == "stays"
    assert secret_env("MG_TEST_TOKEN") == "s3cret-token"
    book = TokenBook(deployment.tokens)  # as a reload builds it, after the seal
    assert book.identify("Bearer s3cret-token") == "a"
