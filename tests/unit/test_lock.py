"""requirements.lock is what pyproject.toml declares, pinned and hashed, and nothing more.

Every install (make demo/test/bench, CI, the image) takes its versions from the lock, so a
dependency added to pyproject.toml without `make lock` would silently not be installed, and one
removed would linger. Both fail here.
"""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

spec = importlib.util.spec_from_file_location("lock_select", ROOT / "scripts" / "lock_select.py")
assert spec is not None and spec.loader is not None
lock_select = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lock_select)

LOCK_TEXT = LOCK.read_text()
BLOCKS, PARENTS = lock_select.parse_lock(LOCK_TEXT)
PINS = {name: Version(block.split("==", 1)[1].split()[0]) for name, block in BLOCKS.items()}


def declared() -> list[Requirement]:
    project = PYPROJECT["project"]
    found = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        found += [Requirement(r) for r in extra]
    return found


@pytest.mark.parametrize("requirement", declared(), ids=str)
def test_every_declared_requirement_is_pinned_within_its_range(requirement):
    name = lock_select.normalize(requirement.name)
    assert name in PINS, f"{requirement} is in pyproject.toml but not in the lock: run `make lock`"
    assert requirement.specifier.contains(PINS[name], prereleases=True), (
        f"the lock pins {name}=={PINS[name]}, outside pyproject's {requirement}: run `make lock`")


def test_the_lock_names_nothing_pyproject_no_longer_declares():
    wanted = {lock_select.normalize(r.name) for r in declared()}
    direct = {name for name, parents in PARENTS.items() if "modelgate" in parents}
    assert direct, "the lock lost its `# via modelgate` annotations; regenerate it with make lock"
    assert direct <= wanted, f"pinned as our own dependencies, declared nowhere: {direct - wanted}"


def test_every_pin_is_exact_and_hashed():
    for name, block in BLOCKS.items():
        assert re.match(r"^[A-Za-z0-9._-]+==[^ ]+ \\$", block.splitlines()[0]), block[:80]
        assert "--hash=sha256:" in block, f"{name} has no hash"


def test_the_lock_carries_no_address_and_no_path():
    for line in LOCK_TEXT.splitlines():
        assert "://" not in line, line
        option = r"\s*(-e|--index-url|--extra-index-url|--find-links|-f|-i)\b"
        assert not re.match(option, line), line
        assert not re.search(r"(^|\s)/(home|root|tmp|work|opt|usr)/", line), line


def test_the_image_selection_is_the_runtime_without_test_or_bench_tools():
    chosen = lock_select.select(LOCK_TEXT, PYPROJECT, ["r", "examples"], None)
    names = {lock_select.normalize(line.split("==")[0])
             for line in chosen.splitlines() if "==" in line}
    for runtime in ("aiohttp", "msgspec", "pyzmq", "rpy2", "numpy", "scikit-learn", "yarl"):
        assert runtime in names
    for tool in ("pytest", "schemathesis", "playwright", "matplotlib", "uv", "ruff"):
        assert tool not in names
    assert chosen.count("==") == len(names), "each pin once, with its hashes"
