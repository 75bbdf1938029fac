#!/usr/bin/env python3
"""Print the part of requirements.lock that one install needs, hashes included.

The lock holds the whole dependency set (runtime and every extra). Two installs need less:
the image takes the runtime with the ``r`` and ``examples`` extras only, and the set-up
bootstraps ``uv`` before anything else. This selects those blocks from the one lock instead of
keeping a second lock that could drift from it. It resolves nothing: the closure follows the
lock's own ``# via`` annotations, which record who requires each pin. Standard library only,
so it runs before any venv exists.

    scripts/lock_select.py requirements.lock --extras r,examples   # runtime + those extras
    scripts/lock_select.py requirements.lock --packages uv         # just these pins
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalize(name: str) -> str:
    """The PEP 503 form of a distribution name, as the lock writes it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Each pin's block of text, and each pin's parents (the names after ``# via``)."""
    blocks: dict[str, list[str]] = {}
    parents: dict[str, set[str]] = {}
    current = None
    in_via = False
    for line in text.splitlines():
        pin = _PIN.match(line)
        if pin:
            current = normalize(pin.group(1))
            blocks[current] = [line]
            parents[current] = set()
            in_via = False
            continue
        if current is None:
            continue  # the header
        blocks[current].append(line)
        comment = line.strip()
        if comment.startswith("# via"):
            rest = comment[len("# via"):].strip()
            in_via = not rest
            if rest:
                parents[current].add(_parent_name(rest))
        elif in_via and comment.startswith("#   "):
            parents[current].add(_parent_name(comment[4:]))
        else:
            in_via = False
    return {name: "\n".join(lines) for name, lines in blocks.items()}, parents


def _parent_name(text: str) -> str:
    """``modelgate (pyproject.toml)`` -> ``modelgate``; ``-r file`` stays as it is."""
    return normalize(text.split(" (")[0].strip())


def requirement_names(requirements: list[str]) -> set[str]:
    return {normalize(m.group(1)) for r in requirements if (m := _NAME.match(r))}


def closure(seeds: set[str], parents: dict[str, set[str]]) -> set[str]:
    """The seeds and everything the lock says they require, transitively."""
    children: dict[str, set[str]] = {}
    for child, of in parents.items():
        for parent in of:
            children.setdefault(parent, set()).add(child)
    chosen, todo = set(), list(seeds)
    while todo:
        name = todo.pop()
        if name not in chosen:
            chosen.add(name)
            todo.extend(children.get(name, ()))
    return chosen


def select(lock_text: str, pyproject: dict, extras: list[str] | None,
           packages: list[str] | None) -> str:
    blocks, parents = parse_lock(lock_text)
    if packages is not None:
        wanted = {normalize(p) for p in packages}
    else:
        project = pyproject["project"]
        declared = project.get("optional-dependencies", {})
        unknown = [e for e in extras or [] if e not in declared]
        if unknown:
            raise SystemExit(f"lock_select: no extra {unknown} in pyproject.toml")
        requirements = list(project.get("dependencies", []))
        for extra in extras or []:
            requirements += declared[extra]
        wanted = closure(requirement_names(requirements), parents)
    missing = sorted(wanted - blocks.keys())
    if missing and packages is not None:
        raise SystemExit(f"lock_select: {missing} not pinned in the lock; run `make lock`")
    return "\n".join(blocks[name] for name in sorted(wanted & blocks.keys())) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lock", type=Path)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--extras", help="comma-separated extras, beside the runtime")
    group.add_argument("--packages", help="comma-separated package names")
    parser.add_argument("--pyproject", type=Path, default=None)
    args = parser.parse_args(argv)
    pyproject_path = args.pyproject or args.lock.parent / "pyproject.toml"
    pyproject = tomllib.loads(pyproject_path.read_text())
    extras = [e for e in args.extras.split(",") if e] if args.extras is not None else None
    packages = args.packages.split(",") if args.packages else None
    sys.stdout.write(select(args.lock.read_text(), pyproject, extras, packages))


if __name__ == "__main__":
    main()
