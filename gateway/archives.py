"""A project sent as a tar.gz archive (the HTTP publishing API), unpacked safely.

:func:`unpack` reads the archive as a stream and writes its files into an empty directory,
refusing, before anything outside that directory could be touched, every member that would
write elsewhere or is not a plain file: absolute paths, ``..``, links (symbolic or hard)
leading out of the tree, device files and FIFOs. It also refuses an archive that unpacks to
more than ``max_bytes`` in all (a "zip bomb": the decompressed stream is counted as it is read,
whatever the headers claim). The caller removes the directory when :class:`ArchiveError` is
raised, so a refused archive leaves nothing behind.
"""

from __future__ import annotations

import gzip
import os
import posixpath
import shutil
import stat
import tarfile
import zlib
from pathlib import Path
from typing import IO

CHUNK = 1024 * 1024


class ArchiveError(Exception):
    """The archive is refused; the message names the member and what to fix."""


class TooLarge(ArchiveError):
    """Over a size limit (the status is 413, not 400)."""


class _Bounded:
    """A read-only stream that refuses to yield more than ``limit`` bytes."""

    def __init__(self, raw: IO[bytes], limit: int) -> None:
        self.raw, self.limit, self.count = raw, limit, 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size if size >= 0 else CHUNK)
        self.count += len(data)
        if self.count > self.limit:
            raise TooLarge(f"the archive unpacks to more than {self.limit} bytes, the limit "
                           "of a project (gateway.snapshot_max_bytes); leave out what the "
                           "model does not need, or raise the limit")
        return data


def unpack(archive: IO[bytes], target: Path, max_bytes: int) -> int:
    """Unpack the tar.gz ``archive`` into the empty directory ``target``; returns the number of
    files. Raises :class:`ArchiveError` (or :class:`TooLarge`)."""
    # A tar stream has 512-byte headers and padding on top of its files: allow for them.
    unzipped: IO[bytes] = gzip.GzipFile(fileobj=archive, mode="rb")  # type: ignore[assignment]
    stream = _Bounded(unzipped, max_bytes + max_bytes // 8 + 64 * 1024)
    root = target.resolve()
    files = total = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                name = _checked_name(member.name)
                if name is None:
                    continue  # "." itself
                path = root / name
                _check_parent(root, path, member.name)
                if member.isdir():
                    path.mkdir(parents=True, exist_ok=True)
                elif member.isreg():
                    total += member.size
                    if total > max_bytes:
                        raise TooLarge(f"the archive holds more than {max_bytes} bytes of "
                                       "files, the limit of a project "
                                       "(gateway.snapshot_max_bytes); leave out what the "
                                       "model does not need, or raise the limit")
                    source = tar.extractfile(member)
                    assert source is not None
                    _write(source, path, member.mode & 0o111 != 0, member.name)
                    files += 1
                elif member.issym():
                    _check_link(member.name, member.linkname, symbolic=True)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(member.linkname, path)
                elif member.islnk():
                    linked = _check_link(member.name, member.linkname, symbolic=False)
                    source_path = root / linked
                    _check_parent(root, source_path, member.linkname)
                    if not source_path.is_file() or source_path.is_symlink():
                        raise ArchiveError(f"{member.name} is a hard link to {member.linkname}, "
                                           "which is not a file earlier in the archive")
                    path.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source_path, path)
                    files += 1
                else:
                    kind = ("a device file" if member.ischr() or member.isblk() else
                            "a FIFO" if member.isfifo() else "not a file, directory or link")
                    raise ArchiveError(f"{member.name} is {kind}; a project holds only files, "
                                       "directories and links inside it")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ArchiveError(f"the body is not a tar.gz archive ({exc}); send the project as "
                           "`tar -czf - -C PROJECT .`") from None
    return files


def _checked_name(name: str) -> str | None:
    """The member's path relative to the tree; refuses absolute paths and ``..``."""
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"{name} is an absolute path; archive the project with paths "
                           "relative to its root (`tar -czf - -C PROJECT .`)")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"{name} leads out of the project (`..`); archive the project with "
                           "paths relative to its root")
    if any("\0" in p for p in parts):
        raise ArchiveError(f"{name!r} holds a NUL character")
    return "/".join(parts) or None


def _check_link(name: str, target: str, symbolic: bool) -> str:
    """Where a link leads, relative to the tree; refuses one that leads out of it."""
    if target.startswith("/"):
        raise ArchiveError(f"{name} is a link to the absolute path {target}, outside the "
                           "project; a project holds only its own files")
    base = posixpath.dirname(name) if symbolic else ""
    resolved = posixpath.normpath(posixpath.join(base, target))
    if resolved == ".." or resolved.startswith("../") or resolved.startswith("/"):
        raise ArchiveError(f"{name} is a link to {target}, outside the project; a project "
                           "holds only its own files: copy what it needs into it")
    return resolved


def _check_parent(root: Path, path: Path, name: str) -> None:
    """Nothing is written through a link leading out of the tree (the links already unpacked
    are followed for real here, not only by name)."""
    parent = path.parent.resolve()
    if not parent.is_relative_to(root):
        raise ArchiveError(f"{name} would be written to {parent}, outside the project, through "
                           "a link in the archive")
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise ArchiveError(f"{name} is in the archive twice; each path may appear once")


def _write(source: IO[bytes], path: Path, executable: bool, name: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                 0o755 if executable else 0o644)
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(CHUNK):
            out.write(chunk)
    if not stat.S_ISREG(path.lstat().st_mode):  # pragma: no cover - O_EXCL makes it a file
        raise ArchiveError(f"{name}: not written as a file")
