"""audit.Published: who published each version, from the audit log read incrementally."""

from __future__ import annotations

import os

import msgspec

from gateway import audit
from gateway.audit import AuditLine


def line(action, model, version, result="ok", actor="ci"):
    return AuditLine(time=audit.now(), actor=actor, action=action, model=model,
                     version=version, result=result)


def full_scan(path, model):
    """What the versions list computed before: every line, every time."""
    return {x.version: x for x in audit.read_from(path)
            if x.model == model and x.action in ("publish", "republish")
            and x.result == "ok" and x.version is not None}


def test_it_agrees_with_a_full_scan_as_lines_are_appended(tmp_path):
    path, published = tmp_path / "audit.jsonl", audit.Published()
    assert published.of(path, "m") == {}  # no log yet
    script = [line("start", None, None), line("publish", "m", 1), line("publish", "n", 1),
              line("promote", "m", 1), line("publish", "m", 2, result="failed"),
              line("publish", "m", 2, actor="alice"), line("unpublish", "m", 1),
              line("republish", "m", 1, actor="bob")]
    for entry in script:
        audit.append(path, entry)
        assert published.of(path, "m") == full_scan(path, "m")
        assert published.of(path, "n") == full_scan(path, "n")
    assert {n: x.actor for n, x in published.of(path, "m").items()} == {1: "bob", 2: "alice"}


def test_only_what_was_appended_is_read_again(tmp_path):
    path, published = tmp_path / "audit.jsonl", audit.Published()
    audit.append(path, line("publish", "m", 1))
    assert set(published.of(path, "m")) == {1}
    # Spoil the line already read, in place (same file, same size): a full scan loses it,
    # the incremental reader has it and reads only the new line.
    data = path.read_bytes()
    with open(path, "r+b") as f:
        f.write(b"x" * (len(data) - 1))
    audit.append(path, line("publish", "m", 2))
    assert set(full_scan(path, "m")) == {2}
    assert set(published.of(path, "m")) == {1, 2}


def test_a_line_still_being_written_waits_for_its_end(tmp_path):
    path, published = tmp_path / "audit.jsonl", audit.Published()
    whole = msgspec.json.encode(line("publish", "m", 1)) + b"\n"
    with open(path, "wb") as f:
        f.write(whole[:20])
    assert published.of(path, "m") == {}
    with open(path, "ab") as f:
        f.write(whole[20:])
    assert set(published.of(path, "m")) == {1}


def test_a_rotated_log_is_read_from_its_start(tmp_path):
    path, published = tmp_path / "audit.jsonl", audit.Published()
    for n in (1, 2, 3):
        audit.append(path, line("publish", "m", n))
    assert set(published.of(path, "m")) == {1, 2, 3}
    rotated = tmp_path / "audit.jsonl.1"
    os.rename(path, rotated)
    audit.append(path, line("publish", "m", 7))  # a new file: new inode, smaller
    assert set(published.of(path, "m")) == {7}
