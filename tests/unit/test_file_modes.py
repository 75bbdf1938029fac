"""Files that hold what callers sent or what operators did are the gateway user's only
(issue 15, L5 and M5): the audit log and the async store with its -wal and -shm."""

import os
import stat

from gateway import audit
from gateway.serving.predictions import PredictionStore


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def line():
    return audit.AuditLine(time=audit.now(), actor="t", action="start", result="ok")


def test_the_audit_log_is_created_0600_and_an_older_0644_one_is_tightened(tmp_path):
    path = tmp_path / "audit.jsonl"
    audit.append(path, line())
    assert mode(path) == 0o600
    old = tmp_path / "old.jsonl"
    old.write_text("")
    old.chmod(0o644)
    audit.append(old, line())
    assert mode(old) == 0o600


def test_the_async_store_and_its_wal_and_shm_are_0600(tmp_path):
    path = str(tmp_path / "async.sqlite3")
    store = PredictionStore(path)
    store.open()
    try:
        store.insert("p1", "m", None, b'{"parameters": [1]}')
        for suffix in ("", "-wal", "-shm"):
            assert mode(path + suffix) == 0o600, suffix
        assert store.usage() == (1, len(b'{"parameters": [1]}'))
    finally:
        store.close()
    os.chmod(path, 0o644)  # an older release's file
    store.open()
    store.close()
    assert mode(path) == 0o600
