"""The snapshot store (SPEC §6): content-addressed, deduplicated, read-only; what goes in and
what is refused, with the version and the path named; and what `modelgate gc` may remove."""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import as_unprivileged, world_readable_dir
from gateway import audit, snapshots
from gateway.cli import gc
from gateway.config import ConfigError, parse
from gateway.snapshots import SnapshotError, Store, prepare, store_of
from gateway.versions import version_id


def project(root: Path) -> Path:
    p = root / "proj"
    (p / "sub").mkdir(parents=True)
    (p / "predict.py").write_text("def f():\n    return 1\n")
    (p / "sub" / "model.bin").write_bytes(b"\x00" * 100_000)
    return p


def test_the_same_content_is_one_snapshot_stored_once_and_read_only(tmp_path):
    store = Store(tmp_path / "store")
    first = store.take(project(tmp_path), 10**9)
    again = store.take(tmp_path / "proj", 10**9)
    assert first == again and first.startswith("sha256:")
    copy = tmp_path / "copy"
    (copy / "other").mkdir(parents=True)
    (copy / "other" / "same.bin").write_bytes(b"\x00" * 100_000)  # same bytes, other name
    other = store.take(copy, 10**9)
    assert other != first
    a, b = store.tree(first) / "sub" / "model.bin", store.tree(other) / "other" / "same.bin"
    assert a.stat().st_ino == b.stat().st_ino  # one copy on disk, hard-linked twice
    assert len(list(store.objects.glob("*/*"))) == 2
    assert a.stat().st_mode & 0o222 == 0 and store.tree(first).stat().st_mode & 0o222 == 0
    # the working tree changes; the snapshot does not
    (tmp_path / "proj" / "predict.py").write_text("def f():\n    return 2\n")
    assert "return 1" in (store.tree(first) / "predict.py").read_text()
    assert store.take(tmp_path / "proj", 10**9) != first


def test_ignored_files_are_left_out(tmp_path):
    p = project(tmp_path)
    (p / ".modelgateignore").write_text("*.log\nscratch/\n!keep.log\n")
    (p / "run.log").write_text("x")
    (p / "keep.log").write_text("x")
    (p / "scratch").mkdir()
    (p / "scratch" / "big").write_text("x")
    (p / ".git").mkdir()
    (p / ".git" / "HEAD").write_text("x")
    (p / "__pycache__").mkdir()
    (p / "__pycache__" / "m.pyc").write_text("x")
    store = Store(tmp_path / "store")
    files = [e.path for e in store.manifest(store.take(p, 10**9)).files]
    assert files == [".modelgateignore", "keep.log", "predict.py", "sub/model.bin"]


def test_a_link_inside_the_project_is_followed_one_leading_out_is_refused(tmp_path):
    p = project(tmp_path)
    (p / "alias.bin").symlink_to("sub/model.bin")
    (p / "again").symlink_to("sub")
    store = Store(tmp_path / "store")
    tree = store.tree(store.take(p, 10**9))
    assert (tree / "alias.bin").read_bytes() == (tree / "again" / "model.bin").read_bytes()
    assert not (tree / "alias.bin").is_symlink()
    outside = tmp_path / "secret.txt"
    outside.write_text("not published")
    (p / "leak.txt").symlink_to(outside)
    with pytest.raises(SnapshotError, match=rf"{p / 'leak.txt'} is a symbolic link to "
                                            rf"{outside}, outside the project"):
        store.take(p, 10**9)
    (p / "leak.txt").unlink()
    (p / "dangling").symlink_to(tmp_path / "nothing")
    with pytest.raises(SnapshotError, match="symbolic link to nothing"):
        store.take(p, 10**9)


def test_a_project_over_the_limit_or_missing_is_refused_before_anything_is_copied(tmp_path):
    p = project(tmp_path)
    store = Store(tmp_path / "store")
    with pytest.raises(SnapshotError, match=r"holds 0\.1 MB in 2 files, over the snapshot "
                                            r"limit of 0\.0 MB .*sub/model\.bin \(0\.1 MB\)"):
        store.take(p, 1000)
    assert not store.objects.exists()
    with pytest.raises(SnapshotError, match=rf"the project directory {tmp_path}/nope does not"):
        store.take(tmp_path / "nope", 10**9)


def test_an_unreadable_file_is_named():
    """A real unreadable file, taken by a user it is unreadable to (root reads any file: the
    check runs as ``nobody`` then), in directories that user may enter and write."""
    directory = world_readable_dir("modelgate-unreadable-")
    try:
        p = project(directory)
        (p / "sub" / "model.bin").chmod(0)
        store = directory / "store"
        store.mkdir(mode=0o777)
        store.chmod(0o777)

        def take_as_unprivileged_user():
            assert not os.access(p / "sub" / "model.bin", os.R_OK)
            with pytest.raises(SnapshotError, match=r"cannot read .*model\.bin"):
                Store(store).take(p, 10**9)

        as_unprivileged(take_as_unprivileged_user)
    finally:
        shutil.rmtree(directory)


def test_a_user_that_is_not_root_takes_and_removes_snapshots():
    """As the container's user: the tree is built aside, moved in place, then read-only (a
    read-only directory cannot be moved to another parent by its non-root owner)."""
    directory = world_readable_dir("modelgate-unprivileged-")
    try:
        p = project(directory)
        for path in [directory, *directory.rglob("*")]:
            path.chmod(0o777 if path.is_dir() else 0o666)

        def take_and_remove():
            store = Store(directory / "store")
            snapshot = store.take(p, 10**9)
            tree = store.tree(snapshot)
            assert (tree / "predict.py").is_file() and not os.access(tree, os.W_OK)
            assert store.take(p, 10**9) == snapshot  # again: nothing to build
            store.remove(snapshot)
            assert snapshot not in store.snapshots()

        as_unprivileged(take_and_remove)
    finally:
        shutil.rmtree(directory)


def deployment(tmp_path, **version):
    raw = {"models": {"m": {"access": {"public": True}, "versions": {1: {
        "language": "python", "script": "proj/predict.py", "function": "f", **version}}}}}
    return parse(raw, str(tmp_path / "deploy.yaml"))


def test_prepare_takes_missing_snapshots_and_names_the_version_and_path(tmp_path):
    project(tmp_path)
    ready, taken = prepare(deployment(tmp_path))
    snapshot = ready.models["m"].versions[1].snapshot
    assert taken == {("m", 1): snapshot}
    assert store_of(ready).root == tmp_path / ".modelgate" / "store"
    # recorded: checked, not taken again
    assert prepare(deployment(tmp_path, snapshot=snapshot))[1] == {}
    missing = "sha256:" + "0" * 64
    with pytest.raises(ConfigError) as error:
        prepare(deployment(tmp_path, snapshot=missing))
    assert f"models.m.versions.1.snapshot: snapshot {missing} is not in the store " \
           f"{tmp_path / '.modelgate' / 'store'}" in str(error.value)
    (tmp_path / "proj" / "link").symlink_to("/etc/hostname")
    with pytest.raises(ConfigError, match=r"deploy\.yaml: models\.m\.versions\.1\.project: .*"
                                          r"proj/link is a symbolic link to /etc/hostname"):
        prepare(deployment(tmp_path))


def test_the_model_version_depends_on_content_not_on_where_the_files_are(tmp_path):
    def vid(root):
        ready, _ = prepare(deployment(root))
        return version_id(ready, "m", ready.models["m"], ready.models["m"].versions[1])

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    project(tmp_path / "a")
    project(tmp_path / "b")
    assert vid(tmp_path / "a") == vid(tmp_path / "b")
    (tmp_path / "b" / "proj" / "sub" / "model.bin").write_bytes(b"\x00" * 99_999 + b"\x01")
    assert vid(tmp_path / "a") != vid(tmp_path / "b")


def test_gc_removes_only_what_nothing_refers_to(tmp_path):
    p = project(tmp_path)
    ready, _ = prepare(deployment(tmp_path))
    store = store_of(ready)
    in_config = ready.models["m"].versions[1].snapshot
    (p / "predict.py").write_text("def f():\n    return 'audited'\n")
    audited = store.take(p, 10**9)
    (p / "predict.py").write_text("def f():\n    return 'old'\n")
    old = store.take(p, 10**9)
    (p / "predict.py").write_text("def f():\n    return 'running'\n")
    running = store.take(p, 10**9)
    audit.append(tmp_path / "audit.jsonl", audit.AuditLine(
        time=audit.now(), actor="t", action="publish", model="m", version=2, snapshot=audited))
    assert gc.unreferenced(ready, store, keep_days=1) == []  # all taken within the window
    past = time.time() - 3 * 86400
    for s in store.snapshots():
        os.utime(store.manifests / f"{s[7:]}.json", (past, past))
    process = subprocess.Popen(["sleep", "30"], cwd=store.tree(running))
    try:
        assert gc.unreferenced(ready, store, keep_days=1) == [old]
        assert sorted(gc.unreferenced(ready, store, keep_days=0)) == sorted([old, audited])
        (tmp_path / "deploy.yaml").write_text(yaml.safe_dump({"models": {"m": {"versions": {1: {
            "language": "python", "script": "proj/predict.py", "function": "f",
            "snapshot": in_config}}}}}))
        assert gc.run(str(tmp_path / "deploy.yaml"), keep_days=1) == 0
    finally:
        process.kill()
        process.wait()
    assert sorted(store.snapshots()) == sorted([in_config, audited, running])
    assert not (store.trees / old[7:]).exists()
    assert audit.read_from(tmp_path / "audit.jsonl")[-1].action == "gc"


def test_a_store_that_cannot_be_written_is_a_clear_error(tmp_path):
    (tmp_path / "a-file").write_text("not a directory")
    with pytest.raises(SnapshotError, match=r"cannot write the snapshot store .*a-file/store: "
                                            r".*gateway\.state_dir must be a directory"):
        Store(tmp_path / "a-file" / "store").take(project(tmp_path), 10**9)


def test_the_deployments_own_files_are_never_in_a_snapshot(tmp_path):
    (tmp_path / "predict.py").write_text("def f():\n    return 1\n")
    for name in ("deploy.yaml.pid", "audit.jsonl", "async.sqlite3", "async.sqlite3-wal"):
        (tmp_path / name).write_text("changes all the time")
    raw = {"models": {"m": {"versions": {1: {
        "language": "python", "script": "predict.py", "function": "f"}}}}}
    (tmp_path / "deploy.yaml").write_text(yaml.safe_dump(raw))
    ready, _ = prepare(parse(raw, str(tmp_path / "deploy.yaml")))
    snapshot = ready.models["m"].versions[1].snapshot
    assert [e.path for e in store_of(ready).manifest(snapshot).files] == ["predict.py"]


def test_a_file_unchanged_since_it_was_hashed_is_not_read_again(tmp_path, monkeypatch):
    p = project(tmp_path)
    store = Store(tmp_path / "store")
    store.settled_ns = 0  # remember every hash (by default: of files older than 2 s)
    first = store.take(p, 10**9)
    read = []
    real = snapshots._sha256
    monkeypatch.setattr(snapshots, "_sha256", lambda path: read.append(path) or real(path))
    assert store.take(p, 10**9) == first and read == []
    # the same size and mtime, another content: its ctime tells
    model = p / "sub" / "model.bin"
    before = model.stat()
    model.write_bytes(b"\x01" * 100_000)
    os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert store.take(p, 10**9) != first
    assert model in read
