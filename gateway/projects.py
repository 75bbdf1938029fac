"""What a project holds: the files a version's snapshot copies (see :mod:`gateway.snapshots`).

Every file under the project, but those matched by its ``.modelgateignore`` (gitignore
syntax), ``.git/`` and ``__pycache__/`` directories, and the paths the caller excludes. A
symbolic link is followed when it leads to a file or directory inside the project (the
snapshot holds the content); one leading out of the project is refused, since the snapshot
would then depend on files nobody published, and so is a dangling one. Other special files
(sockets, FIFOs) and empty directories are left out.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pathspec

IGNORE_FILE = ".modelgateignore"
ALWAYS_IGNORED = (".git/", "__pycache__/")

# (path in the project with "/", path to read, size, executable)
ProjectFile = tuple[str, Path, int, bool]


class ProjectError(Exception):
    """A project that cannot be read, or holds what a snapshot refuses; the message names the
    file and says what to do."""


def project_files(project: Path, exclude: tuple[Path, ...] = ()) -> Iterator[ProjectFile]:
    """Every file to snapshot, in a stable order; raises :class:`ProjectError`."""
    try:
        root = project.resolve(strict=True)
        if not root.is_dir():
            raise ProjectError(f"the project {project} is not a directory")
        os.listdir(root)
    except FileNotFoundError:
        raise ProjectError(f"the project directory {project} does not exist") from None
    except PermissionError:
        raise ProjectError(f"the project directory {project} cannot be read; the user "
                            "publishing and serving must be able to read it") from None
    ignore = _ignore_spec(root)
    excluded = {p.resolve() for p in exclude}
    yield from _walk(root, root, "", ignore, excluded, (root,))


def _walk(root: Path, directory: Path, prefix: str, ignore: pathspec.PathSpec,
          excluded: set[Path], chain: tuple[Path, ...]) -> Iterator[ProjectFile]:
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        raise ProjectError(f"cannot read {directory} in the project {root}: "
                            f"{exc.strerror}") from None
    for entry in entries:
        rel = f"{prefix}{entry.name}"
        path = Path(entry.path)
        real = path
        if entry.is_symlink():
            try:
                real = path.resolve(strict=True)
            except (OSError, RuntimeError):
                raise ProjectError(f"{path} is a symbolic link to nothing "
                                    f"({os.readlink(path)}); remove it, or exclude it in "
                                    f"{root / IGNORE_FILE}") from None
            if not real.is_relative_to(root):
                raise ProjectError(
                    f"{path} is a symbolic link to {real}, outside the project {root}; a "
                    "snapshot holds only the project's own files: copy what it needs into the "
                    f"project, or exclude the link in {root / IGNORE_FILE}")
        if real in excluded or any(real.is_relative_to(e) for e in excluded if e.is_dir()):
            continue
        try:
            info = real.stat()
        except OSError as exc:
            raise ProjectError(f"cannot read {path}: {exc.strerror}") from None
        if stat.S_ISDIR(info.st_mode):
            if ignore.match_file(f"{rel}/") or real in chain:
                continue  # ignored, or a link back to a directory above: seen already
            yield from _walk(root, real, f"{rel}/", ignore, excluded, (*chain, real))
        elif stat.S_ISREG(info.st_mode) and not ignore.match_file(rel):
            if not os.access(real, os.R_OK):
                raise ProjectError(f"cannot read {path}: permission denied; make it "
                                    f"readable, or exclude it in {root / IGNORE_FILE}")
            yield rel, real, info.st_size, bool(info.st_mode & 0o111)


def _ignore_spec(root: Path) -> pathspec.PathSpec:
    lines = list(ALWAYS_IGNORED)
    ignore_file = root / IGNORE_FILE
    if ignore_file.is_file():
        lines += ignore_file.read_text(encoding="utf-8", errors="replace").splitlines()
    return pathspec.GitIgnoreSpec.from_lines(lines)
