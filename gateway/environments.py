"""Per-version Python environments (SPEC §6): ``environment: {requirements: FILE}``.

The requirements file (in the version's snapshot; a lock with pins and hashes is fine too) is
resolved with uv into a lock: pins and hashes only, no paths or index addresses, so the same
resolution hashes the same on any machine. That lock, together with the worker runtime's own
needs pinned to the gateway's versions, names a venv in the deployment's state directory
(``environments/<hash>``): built once with uv (its cache makes a rebuild cheap) and shared by
every version with the same lock. The worker runtime, the ``workers`` package, is copied in
(it needs nothing of the gateway), and the version's pool runs under that venv's interpreter.

A resolution is kept per requirements content, so a restart or a reload does not resolve
again (and an unpinned requirement does not drift under a running version). A build goes to a
temporary directory renamed in place when complete, so a failed or interrupted build leaves
nothing half-made. Failures raise :class:`ConfigError` with uv's own message.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import msgspec

import workers.wire
from gateway.config import ConfigError, Deployment, Model, Version
from gateway.snapshots import SnapshotError, store_of

# What the worker runtime imports, installed beside the version's own requirements at the
# gateway's versions (a requirement that conflicts with them is a resolver error).
RUNTIME = ("msgspec", "pyzmq", "structlog", "multiprocess")
UV_TIMEOUT_S = 600


class Environment(msgspec.Struct, frozen=True):
    """A built environment: the interpreter a pool runs under, and the hash of its lock
    (part of ``model_version``)."""

    python: str
    lock_sha256: str


class BuildError(Exception):
    """uv could not resolve or install; the message is uv's."""


def build_all(deployment: Deployment) -> dict[tuple[str, int], Environment]:
    """The environment of every served version that declares ``requirements`` (built when
    missing); raises :class:`ConfigError` naming each version that cannot have its own."""
    built: dict[tuple[str, int], Environment] = {}
    problems: list[str] = []
    for name, model in deployment.models.items():
        for n, version in model.versions.items():
            if model.unpublished or version.unpublished:
                continue
            try:
                environment = build(deployment, model, version)
            except BuildError as exc:
                problems.append(f"models.{name}.versions.{n}.environment: {exc}")
                continue
            if environment is not None:
                built[(name, n)] = environment
    if problems:
        raise ConfigError(deployment.path, problems)
    return built


def build(deployment: Deployment, model: Model, version: Version) -> Environment | None:
    """The version's environment (None: it declares no requirements, and runs under the
    gateway's interpreter). The version must have its snapshot."""
    if version.environment is None or version.environment.requirements is None:
        return None
    assert version.snapshot is not None, "environments are built from the snapshot"
    requirements = store_of(deployment).tree(version.snapshot) / version.environment.requirements
    if not requirements.is_file():
        raise BuildError(f"requirements: {version.environment.requirements} is not in the "
                         f"project {deployment.project_path(model, version)} (as published)")
    root = deployment.state_path / "environments"
    lock = _resolved(root, requirements.read_bytes())
    venv = _venv(root, lock)
    python = venv / "bin" / "python"
    if not python.exists():
        try:
            _build_venv(root, venv, lock)
        except OSError as exc:
            raise BuildError(f"cannot write the environment in {root}: {exc.strerror} "
                             f"({exc.filename}); gateway.state_dir must be a directory the "
                             "gateway's user can write") from None
    return Environment(python=str(python), lock_sha256=hashlib.sha256(lock).hexdigest())


def built(deployment: Deployment, model: Model, version: Version) -> Path | None:
    """The venv directory of a version's environment if it was resolved on this host (for
    ``modelgate gc``; nothing is resolved or built)."""
    if (version.environment is None or version.environment.requirements is None
            or version.snapshot is None):
        return None
    root = deployment.state_path / "environments"
    try:
        tree = store_of(deployment).tree(version.snapshot)
        lock = _lock_file(root, (tree / version.environment.requirements).read_bytes())
    except (SnapshotError, OSError):
        return None
    return _venv(root, lock.read_bytes()) if lock.is_file() else None


def _venv(root: Path, lock: bytes) -> Path:
    return root / hashlib.sha256(lock + _runtime_fingerprint()).hexdigest()[:32]


def _runtime_pins() -> str:
    return "".join(f"{name}=={importlib.metadata.version(name)}\n" for name in RUNTIME)


def _lock_file(root: Path, requirements: bytes) -> Path:
    key = hashlib.sha256(requirements + b"\0" + _runtime_pins().encode() + sys.version.encode())
    return root / "locks" / f"{key.hexdigest()}.txt"


def _resolved(root: Path, requirements: bytes) -> bytes:
    """The lock of ``requirements`` (with the runtime's pins): resolved once, then kept."""
    runtime = _runtime_pins()
    kept = _lock_file(root, requirements)
    if kept.is_file():
        return kept.read_bytes()
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BuildError(f"cannot write in {root}: {exc.strerror}; gateway.state_dir must be "
                         "a directory the gateway's user can write") from None
    with tempfile.TemporaryDirectory(dir=kept.parent) as work:
        (Path(work) / "requirements.txt").write_bytes(requirements)
        (Path(work) / "runtime.txt").write_text(runtime)
        lock = _uv("pip", "compile", "requirements.txt", "runtime.txt", "--generate-hashes",
                   "--no-header", "--no-annotate", "--quiet", "--python", sys.executable,
                   cwd=work, what="resolve the requirements")
    temporary = kept.with_name(f".{uuid.uuid4().hex}")
    temporary.write_bytes(lock)
    os.replace(temporary, kept)
    return lock


def _build_venv(root: Path, venv: Path, lock: bytes) -> None:
    building = root / f".build-{uuid.uuid4().hex}"
    try:
        _uv("venv", "--quiet", "--python", sys.executable, str(building),
            what="create the environment")
        (building / "lock.txt").write_bytes(lock)
        _uv("pip", "sync", "--quiet", "--require-hashes", "--python",
            str(building / "bin" / "python"), str(building / "lock.txt"),
            what="install the requirements")
        site = next((building / "lib").glob("python*/site-packages"))
        shutil.copytree(Path(workers.wire.__file__).parent, site / "workers",
                        ignore=shutil.ignore_patterns("__pycache__"))
        try:
            os.rename(building, venv)
        except OSError:  # built meanwhile by another process: theirs serves
            if not (venv / "bin" / "python").exists():
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)


def _runtime_fingerprint() -> bytes:
    """The worker runtime's code: a new modelgate gets new environments."""
    digest = hashlib.sha256()
    for path in sorted(Path(workers.wire.__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.digest()


def _uv(*args: str, what: str, cwd: str | None = None) -> bytes:
    uv = shutil.which("uv", path=os.path.dirname(sys.executable)) or shutil.which("uv")
    if uv is None:
        raise BuildError(f"cannot {what}: uv is not installed (pip install uv)")
    # The host's trust store, as pip and curl use it (uv's own roots miss a company's or a
    # proxy's CA); a value the operator set wins.
    env = {"UV_SYSTEM_CERTS": "1", **os.environ}
    try:
        done = subprocess.run([uv, *args], cwd=cwd, capture_output=True, env=env,
                              timeout=UV_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise BuildError(f"cannot {what}: uv took more than {UV_TIMEOUT_S} s") from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise BuildError(f"cannot {what}; uv says:\n{message}")
    return done.stdout
