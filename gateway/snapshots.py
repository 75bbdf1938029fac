"""The snapshot store (SPEC §6): a version serves an immutable copy of its project directory.

``take`` copies a project into the store under the deployment's state directory
(``gateway.state_dir``) and returns its id, ``sha256:`` and the hash of its manifest (every
file's path, content hash and executable bit, sorted), so identical content gives the
identical id on any machine. The store holds:

* ``objects/ab/cdef…``: each file content once, named by its SHA-256 and read-only. A content
  already there is not copied again (a 300 MB model file costs one read to hash it);
* ``manifests/<hex>.json``: what each snapshot holds;
* ``snapshots/<hex>/``: the snapshot as a directory tree the workers run in, its files hard
  links to the objects (copies where the filesystem has no hard links), files and directories
  read-only.

What goes in is :mod:`gateway.projects`'s to say, and never the deployment's own files (its
config, audit log, state directory...) when they lie inside the project.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec

from gateway.config import ConfigError, Deployment, Model, Version, function_problem
from gateway.projects import IGNORE_FILE, ProjectError, project_files

PREFIX = "sha256:"
CHUNK = 1024 * 1024
FICLONE = 0x40049409  # Linux ioctl: share the blocks of a file (btrfs, XFS): a free copy


class SnapshotError(Exception):
    """The project cannot be snapshotted, or a snapshot is not in the store; the message says
    which file or id, and what to do."""


class Entry(msgspec.Struct, array_like=True, frozen=True):
    path: str  # relative, with "/"
    sha256: str
    size: int
    executable: bool


class Manifest(msgspec.Struct, frozen=True):
    files: list[Entry]


class Known(msgspec.Struct, array_like=True, frozen=True):
    """A file's content hash, and the stat it had then (device, inode, size, mtime, ctime)."""

    stamp: tuple[int, int, int, int, int]
    sha256: str


SETTLED_NS = 2_000_000_000

_encode = msgspec.json.Encoder().encode
_decode_manifest = msgspec.json.Decoder(Manifest).decode
_decode_known = msgspec.json.Decoder(dict[str, Known]).decode


def snapshot_id(manifest: Manifest) -> str:
    return PREFIX + hashlib.sha256(_encode(manifest.files)).hexdigest()


class Store:
    """A content-addressed store of project snapshots in ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "objects"
        self.manifests = root / "manifests"
        self.trees = root / "snapshots"
        self.scratch = root / "tmp"
        self.settled_ns = SETTLED_NS  # a file's hash is remembered once it is this old

    # ------------------------------------------------------------------ reading

    def tree(self, snapshot: str) -> Path:
        """The directory a snapshot's workers run in; raises :class:`SnapshotError` when the
        store does not hold it."""
        path = self.trees / _hex(snapshot)
        if not (path.is_dir() and (self.manifests / f"{_hex(snapshot)}.json").is_file()):
            raise SnapshotError(f"snapshot {snapshot} is not in the store {self.root}; "
                                "publish the version again from its project, or restore the "
                                "store from a backup")
        return path

    def manifest(self, snapshot: str) -> Manifest:
        return _decode_manifest((self.manifests / f"{_hex(snapshot)}.json").read_bytes())

    def snapshots(self) -> list[str]:
        if not self.manifests.is_dir():
            return []
        return sorted(PREFIX + p.stem for p in self.manifests.glob("*.json"))

    # ------------------------------------------------------------------ writing

    def take(self, project: Path, max_bytes: int, exclude: tuple[Path, ...] = ()) -> str:
        """Snapshot ``project``; returns its id. Raises :class:`SnapshotError` naming the file
        at fault (unreadable, a link out of the project, over ``max_bytes`` in all)."""
        try:
            files = list(project_files(project, exclude))
        except ProjectError as exc:
            raise SnapshotError(str(exc)) from None
        total = sum(size for _, _, size, _ in files)
        if total > max_bytes:
            biggest = sorted(files, key=lambda f: -f[2])[:3]
            names = ", ".join(f"{rel} ({_mb(size)})" for rel, _, size, _ in biggest)
            raise SnapshotError(
                f"the project {project} holds {_mb(total)} in {len(files)} files, over the "
                f"snapshot limit of {_mb(max_bytes)} (gateway.snapshot_max_bytes); the "
                f"largest: {names}. Exclude what the model does not need in "
                f"{project / IGNORE_FILE} (gitignore syntax), or raise the limit")
        try:
            with self._locked():
                known = self._known_hashes()
                entries = [Entry(rel, self._add_object(source, known), size, executable)
                           for rel, source, size, executable in files]
                self._keep_hashes(known)
                manifest = Manifest(sorted(entries, key=lambda e: e.path))
                snapshot = snapshot_id(manifest)
                if not (self.trees / _hex(snapshot)).is_dir():
                    self._build_tree(snapshot, manifest)
        except OSError as exc:
            raise SnapshotError(f"cannot write the snapshot store {self.root}: "
                                f"{exc.strerror} ({exc.filename}); gateway.state_dir must be a "
                                "directory the gateway's user can write") from None
        return snapshot

    def remove(self, snapshot: str) -> None:
        """Remove one snapshot's tree and manifest (its objects go with :meth:`prune`)."""
        with self._locked():
            tree = self.trees / _hex(snapshot)
            if tree.exists():
                _remove_tree(tree)
            (self.manifests / f"{_hex(snapshot)}.json").unlink(missing_ok=True)

    def prune(self) -> int:
        """Remove objects no snapshot holds; returns the bytes freed."""
        with self._locked():
            wanted = {e.sha256 for s in self.snapshots() for e in self.manifest(s).files}
            freed = 0
            for path in self.objects.glob("*/*") if self.objects.is_dir() else []:
                if path.parent.name + path.name not in wanted:
                    freed += path.stat().st_size
                    path.unlink()
            known = self._known_hashes()
            self._keep_hashes({p: k for p, k in known.items() if os.path.exists(p)})
            return freed

    def _add_object(self, source: Path, known: dict[str, Known]) -> str:
        """Store one file's content (once); returns its SHA-256. A file unchanged since it was
        last hashed (the same inode, size, mtime and ctime, and settled then) is not read."""
        try:
            info = os.stat(source)
        except OSError as exc:
            raise SnapshotError(f"cannot read {source}: {exc.strerror}") from None
        seen = known.get(str(source))
        stamp = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
        if seen is not None and seen.stamp == stamp and self._object(seen.sha256).exists():
            return seen.sha256
        digest = _sha256(source)
        if time.time_ns() - max(info.st_mtime_ns, info.st_ctime_ns) > self.settled_ns:
            known[str(source)] = Known(stamp, digest)  # a file written just now may change
        target = self._object(digest)                  # again within the clock's resolution
        if target.exists():
            return digest
        self.scratch.mkdir(parents=True, exist_ok=True)
        temporary = self.scratch / uuid.uuid4().hex
        try:
            _copy(source, temporary)
            copied = _sha256(temporary)  # the file may have changed since it was hashed
            os.chmod(temporary, 0o444)
            target = self._object(copied)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        return copied

    def _known_hashes(self) -> dict[str, Known]:
        try:
            return _decode_known((self.root / "hashes.json").read_bytes())
        except (OSError, msgspec.DecodeError):
            return {}

    def _keep_hashes(self, known: dict[str, Known]) -> None:
        temporary = self.root / f".hashes-{uuid.uuid4().hex}"
        temporary.write_bytes(_encode(known))
        os.replace(temporary, self.root / "hashes.json")

    def _object(self, digest: str) -> Path:
        return self.objects / digest[:2] / digest[2:]

    def _build_tree(self, snapshot: str, manifest: Manifest) -> None:
        """The manifest first, then the tree (built aside, renamed in place: all or nothing)."""
        self.manifests.mkdir(parents=True, exist_ok=True)
        self.trees.mkdir(parents=True, exist_ok=True)
        manifest_path = self.manifests / f"{_hex(snapshot)}.json"
        temporary = self.manifests / f".{uuid.uuid4().hex}"
        temporary.write_bytes(_encode(manifest))
        os.replace(temporary, manifest_path)
        building = self.scratch / uuid.uuid4().hex
        building.mkdir(parents=True)
        try:
            for entry in manifest.files:
                target = building / entry.path
                target.parent.mkdir(parents=True, exist_ok=True)
                _link_or_copy(self._object(entry.sha256), target, entry.executable)
            for directory, _, _ in os.walk(building, topdown=False):
                if directory != str(building):
                    os.chmod(directory, 0o555)
            # a directory moves to another parent only while its owner may write it (its
            # `..` changes), so the tree's own root is made read-only once in place
            os.rename(building, self.trees / _hex(snapshot))
            os.chmod(self.trees / _hex(snapshot), 0o555)
        finally:
            if building.exists():
                _remove_tree(building)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time (a publish and a gc must not cross)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


# ---------------------------------------------------------------------- files

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise SnapshotError(f"cannot read {path}: {exc.strerror}") from None
    return digest.hexdigest()


def _copy(source: Path, target: Path) -> None:
    """A reflink where the filesystem shares blocks, else a kernel-side copy."""
    with open(source, "rb") as src, open(target, "wb") as dst:
        try:
            fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
            return
        except OSError:
            pass
        _copy_range(src.fileno(), dst.fileno())


def _copy_range(src: int, dst: int) -> None:
    size = os.fstat(src).st_size
    try:
        while size > 0:
            copied = os.copy_file_range(src, dst, size)
            if copied == 0:
                break
            size -= copied
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
            raise
        while chunk := os.read(src, CHUNK):
            os.write(dst, chunk)


def _link_or_copy(source: Path, target: Path, executable: bool) -> None:
    """A hard link to the object where the filesystem allows; its mode is the object's (read
    only), so an executable file gets a copy of its own."""
    if not executable:
        try:
            os.link(source, target)
            return
        except OSError:
            pass
    shutil.copyfile(source, target)
    os.chmod(target, 0o555 if executable else 0o444)


def _remove_tree(path: Path) -> None:
    for directory, _, _ in os.walk(path):
        os.chmod(directory, 0o755)
    shutil.rmtree(path)


def _hex(snapshot: str) -> str:
    if not (snapshot.startswith(PREFIX) and len(snapshot) == len(PREFIX) + 64):
        raise SnapshotError(f"{snapshot!r} is not a snapshot id (sha256: and 64 hex digits)")
    return snapshot[len(PREFIX):]


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


# ---------------------------------------------------------------------- a deployment's

def store_of(deployment: Deployment) -> Store:
    return Store(deployment.state_path / "store")


def deployment_files(deployment: Deployment) -> tuple[Path, ...]:
    """The deployment's own files, never part of a snapshot even inside a project."""
    base, settings = deployment.base_dir, deployment.gateway
    config = Path(deployment.path).resolve()
    database = base / settings.async_db
    return (config, Path(f"{config}.pid"), base / settings.audit_log, database,
            *(Path(f"{database}{suffix}") for suffix in ("-wal", "-shm", "-journal")),
            deployment.state_path)


def prepare(deployment: Deployment, take_missing: bool = True
            ) -> tuple[Deployment, dict[tuple[str, int], str]]:
    """Every published version with a snapshot in the store: those without one get one taken
    of their project now (unless not ``take_missing``: they are left as they are). Returns the
    deployment with their ids, and the ids taken; raises :class:`ConfigError` naming each
    version that cannot (and its path)."""
    problems: list[str] = []
    taken: dict[tuple[str, int], str] = {}
    models = dict(deployment.models)
    for name, model in deployment.models.items():
        versions = dict(model.versions)
        for n, version in model.versions.items():
            if version.unpublished or model.unpublished:
                continue
            where = f"models.{name}.versions.{n}"
            try:
                if version.snapshot is not None:
                    problems.extend(_snapshot_problems(deployment, where, model, version))
                    continue
                if not take_missing:
                    continue
                snapshot = take(deployment, model, version)
            except SnapshotError as exc:
                problems.append(f"{where}.project: {exc}")
                continue
            taken[(name, n)] = snapshot
            versions[n] = msgspec.structs.replace(version, snapshot=snapshot)
        models[name] = msgspec.structs.replace(model, versions=versions)
    if problems:
        raise ConfigError(deployment.path, problems)
    return msgspec.structs.replace(deployment, models=models), taken


def _snapshot_problems(deployment: Deployment, where: str, model: Model,
                       version: Version) -> list[str]:
    """A recorded snapshot: in the store, holding the script, which defines the function."""
    assert version.snapshot is not None
    try:
        tree = store_of(deployment).tree(version.snapshot)
    except SnapshotError as exc:
        return [f"{where}.snapshot: {exc}"]
    script = tree / script_in_snapshot(deployment, model, version)
    if not script.is_file():
        return [f"{where}.script: {version.script} is not in the snapshot {version.snapshot} "
                f"of the project {deployment.project_path(model, version)}"]
    problem = function_problem(script, version)
    if problem:
        return [f"{where}.function: {problem} (in snapshot {version.snapshot})"]
    libs = version.environment.r_libs if version.environment is not None else []
    return [f"{where}.environment.r_libs: {lib} is not a directory in the project "
            f"{deployment.project_path(model, version)} (as published in {version.snapshot})"
            for lib in libs if not (tree / lib).is_dir()]


def take(deployment: Deployment, model: Model, version: Version) -> str:
    """Snapshot the project of ``version`` into the deployment's store."""
    project = deployment.project_path(model, version)
    return store_of(deployment).take(project, deployment.gateway.snapshot_max_bytes,
                                     deployment_files(deployment))


def script_in_snapshot(deployment: Deployment, model: Model, version: Version) -> str:
    """The script's path inside the snapshot (relative, with "/")."""
    script = deployment.script_path(version)
    project = deployment.project_path(model, version)
    return script.relative_to(project).as_posix()
