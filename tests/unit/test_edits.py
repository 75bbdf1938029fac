"""The CLI's version actions as YAML edits (SPEC §6, §8): comments and order survive, what the
gateway would refuse is refused with a message saying what to do, and a refused edit leaves
the file as it was. Also the audit log the rollback reads."""

import errno
import os
import re
import shutil
import stat

import pytest

from conftest import EXAMPLES, as_unprivileged, world_readable_dir
from gateway import audit, edits, snapshots
from gateway.audit import AuditLine
from gateway.cli import control
from gateway.config import load

SCRIPT = EXAMPLES / "basics" / "basics.py"

CONFIG = f"""\
# the deployment (this comment must survive)
gateway:
  audit_log: audit.jsonl   # beside this file

models:
  wine:
    description: "quoted, kept quoted"
    access: {{public: true}}
    routing: advanced      # prod is the promoted version
    promoted: 1            # changed by `modelgate promote`
    versions:
      1: {{language: python, script: {SCRIPT}, function: add, workers: 2}}
      # version 2 is the candidate
      2: {{language: python, script: {SCRIPT}, function: add, workers: 3}}
      3: {{language: python, script: {SCRIPT}, function: add, unpublished: true}}
  plain:
    access: {{public: true}}
    versions:
      1:
        language: python
        script: {SCRIPT}
        function: add
      2:
        language: python
        script: {SCRIPT}
        function: echo
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "deploy.yaml"
    path.write_text(CONFIG)
    return path


def apply(path, edit):
    change, text = edits.edit_file(path, edit)
    assert path.read_bytes() == text
    return change, text.decode()


def refused(path, edit, *words):
    before = path.read_bytes()
    with pytest.raises(edits.EditError) as error:
        edits.edit_file(path, edit)
    assert path.read_bytes() == before, "a refused edit changed the file"
    left = [p.name for p in path.parent.iterdir() if p.name != ".modelgate"]  # the store
    assert left == [path.name], "a temporary file was left"
    for word in words:
        assert word in str(error.value)
    return str(error.value)


def promotion(model, before, after, action="promote"):
    return AuditLine(time=audit.now(), actor="me", action=action, model=model, version=after,
                     before=before, after=after)


# ------------------------------------------------------------------ promote

def test_promote_changes_only_the_promoted_line_and_keeps_comments(config):
    change, text = apply(config, edits.promote("wine", 2))
    assert (change.before, change.after, change.version) == (1, 2, 2)
    assert change.summary() == "wine: promote v2 (production v1 -> v2)"
    expected = CONFIG.replace("promoted: 1            #", "promoted: 2            #")
    assert text == expected


def test_promote_refuses_what_cannot_be_promoted(config):
    refused(config, edits.promote("beer", 1), "no model named `beer`", "wine, plain")
    refused(config, edits.promote("wine", 7), "has no version 7", "1, 2, 3")
    refused(config, edits.promote("wine", 3), "version 3 of `wine` is unpublished")
    refused(config, edits.promote("plain", 1), "basic routing", "routing: advanced")


def test_promoting_the_promoted_version_is_nothing_to_do(config):
    with pytest.raises(edits.NothingToDo):
        edits.edit_file(config, edits.promote("wine", 1))
    assert config.read_text() == CONFIG


# ------------------------------------------------------------------ rollback

def test_each_rollback_undoes_one_more_promotion():
    history = [promotion("wine", 1, 2), promotion("other", 5, 6), promotion("wine", 2, 3)]
    assert edits.previous_promotions(history, "wine") == [1, 2]
    history.append(promotion("wine", 3, 2, action="rollback"))
    assert edits.previous_promotions(history, "wine") == [1]
    failed = AuditLine(time="t", actor="me", action="promote", model="wine", before=2, after=1,
                       result="failed")
    assert edits.previous_promotions([*history, failed], "wine") == [1]


def test_rollback_returns_to_the_previously_promoted_version(config):
    _, _ = apply(config, edits.promote("wine", 2))
    change, text = apply(config, edits.rollback("wine", [promotion("wine", 1, 2)]))
    assert (change.action, change.before, change.after) == ("rollback", 2, 1)
    assert "promoted: 1            # changed by" in text


def test_rollback_without_an_earlier_promotion_is_refused(config):
    refused(config, edits.rollback("wine", []), "no earlier promotion of `wine`",
            "modelgate promote wine N")
    refused(config, edits.rollback("wine", [promotion("wine", 3, 1)]),
            "previously promoted version 3 of `wine` is unpublished")
    refused(config, edits.rollback("plain", [promotion("plain", 1, 2)]), "basic routing")


# ------------------------------------------------------------------ unpublish

def test_unpublish_marks_the_version_and_keeps_its_style(config):
    change, text = apply(config, edits.unpublish("wine", 2))
    assert (change.before, change.after) == (1, 1)
    assert f"2: {{language: python, script: {SCRIPT}, function: add, workers: 3, " \
           "unpublished: true}" in text
    assert "# version 2 is the candidate" in text


def test_unpublishing_the_latest_under_basic_routing_moves_production_back(config):
    change, text = apply(config, edits.unpublish("plain", 2))
    assert (change.before, change.after) == (2, 1)
    assert "        function: echo\n        unpublished: true\n" in text


def test_unpublish_refuses_the_promoted_and_the_only_published_version(config):
    refused(config, edits.unpublish("wine", 1), "promoted version of `wine`",
            "promote another version first")
    apply(config, edits.unpublish("plain", 2))
    refused(config, edits.unpublish("plain", 1), "only published version")
    with pytest.raises(edits.NothingToDo):
        edits.edit_file(config, edits.unpublish("wine", 3))


# ------------------------------------------------------------------ publish

def test_publish_adds_the_next_number_like_its_neighbours(config, tmp_path):
    change, text = apply(config, edits.publish(
        "wine", script=str(SCRIPT), function="echo", config_path=config))
    assert (change.version, change.before, change.after) == (4, 1, 1)  # after unpublished 3
    # flow style and workers of the latest published version (2), and the snapshot taken
    assert re.search(re.escape(f"      4: {{language: python, script: {SCRIPT}, function: echo, "
                               "workers: 3, snapshot: sha256:") + "[0-9a-f]{64}}\n", text)
    assert change.snapshot is not None and change.snapshot in text


def test_publish_writes_the_script_relative_to_the_config(config, tmp_path):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "fn.py").write_bytes(SCRIPT.read_bytes())
    change, text = apply(config, edits.publish(
        "plain", script="fn.py", function="add", workers=2, config_path=config, cwd=scripts))
    assert (change.version, change.before, change.after) == (3, 2, 3)  # basic: prod moves
    assert "      3:\n        language: python\n        script: scripts/fn.py\n" \
           "        function: add\n        workers: 2\n        snapshot: sha256:" in text
    # with no directory in common (say /tmp and /work), the absolute path
    _, text = apply(config, edits.publish("plain", script=SCRIPT.name, function="add",
                                          config_path=config, cwd=SCRIPT.parent))
    apart = os.path.commonpath([SCRIPT, tmp_path]) == "/"
    written = SCRIPT if apart else os.path.relpath(SCRIPT, tmp_path)
    assert f"      4:\n        language: python\n        script: {written}\n" in text


def test_publish_refuses_a_missing_script_or_function(config, tmp_path):
    with pytest.raises(edits.EditError, match=r"script nope\.py does not exist"):
        edits.publish("wine", script="nope.py", function="f", config_path=config, cwd=tmp_path)
    with pytest.raises(edits.EditError, match="give --language"):
        edits.publish("wine", script=str(config), function="f", config_path=config)
    message = refused(config, edits.publish("wine", script=str(SCRIPT), function="missing",
                                            config_path=config),
                      "left unchanged", "models.wine.versions.4.function")
    assert "missing is not defined" in message


def test_an_edit_keeps_the_files_permissions(config):
    config.chmod(0o640)
    apply(config, edits.promote("wine", 2))
    assert stat.S_IMODE(config.stat().st_mode) == 0o640


def test_a_symlinked_config_stays_a_link_and_the_file_it_names_is_edited(config, tmp_path,
                                                                          capsys):
    (tmp_path / "current").mkdir()
    link = tmp_path / "current" / "deploy.yaml"
    link.symlink_to(config)
    _, text = edits.edit_file(link, edits.promote("wine", 2))
    assert link.is_symlink() and link.resolve() == config
    assert config.read_bytes() == text and b"promoted: 2 " in text
    assert os.listdir(link.parent) == ["deploy.yaml"], "a temporary file was left"
    # the CLI's way: the audit log (and pid file) beside the real file, as the gateway has it
    logs = []

    def promote_back(log):
        logs.append(log)
        return edits.promote("wine", 1)

    assert control.run_action("promote", link, None, 0, promote_back) == 0
    assert link.is_symlink() and b"promoted: 1 " in config.read_bytes()
    assert logs == [tmp_path / "audit.jsonl"]
    assert [line.action for line in audit.read_from(logs[0])] == ["promote"]
    assert f"no gateway is serving {config} (no live deploy.yaml.pid)" in capsys.readouterr().out


def test_a_file_that_cannot_be_replaced_is_refused_with_what_to_do(config, monkeypatch):
    def cross_device(source, target):
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(os, "replace", cross_device)
    message = refused(config, edits.promote("wine", 2), f"{config}: cannot replace the file",
                      os.strerror(errno.EXDEV), "so it is unchanged", "must be writable")
    assert "Traceback" not in message


def test_a_config_in_a_read_only_directory_is_refused_with_what_to_do():
    """For real, as a user who may not write there (root may write anywhere: the edit runs as
    ``nobody`` then), in a directory that user can enter and read."""
    directory = world_readable_dir("modelgate-read-only-")
    try:
        config = directory / "deploy.yaml"
        config.write_text(CONFIG)
        config.chmod(0o644)
        directory.chmod(0o555)

        def edit_as_unprivileged_user():
            assert not os.access(directory, os.W_OK)
            refused(config, edits.promote("wine", 2), "Permission denied",
                    f"{directory} must be writable by you")

        as_unprivileged(edit_as_unprivileged_user)
        assert config.read_text() == CONFIG
    finally:
        directory.chmod(0o755)
        shutil.rmtree(directory)


def test_the_audit_log_is_found_beside_the_config(config, tmp_path):
    doc = edits.load_document(config.read_bytes(), str(config))
    assert edits.audit_log_of(doc, config) == tmp_path / "audit.jsonl"


def test_a_file_that_is_not_a_deployment_is_refused(tmp_path):
    with pytest.raises(edits.EditError, match="not valid YAML"):
        edits.load_document(b"models: [", "x.yaml")
    with pytest.raises(edits.EditError, match="with a `models` section"):
        edits.load_document(b"- 1\n", "x.yaml")


# ------------------------------------------------------------------ the audit log

def test_audit_lines_are_appended_and_read_back_newest_last(tmp_path, monkeypatch):
    monkeypatch.setattr(audit, "READ_BLOCK", 64)  # lines cross block boundaries
    path = tmp_path / "audit.jsonl"
    for n in range(1, 8):
        audit.append(path, promotion("a" if n % 2 else "b", n - 1, n))
    with path.open("ab") as f:
        f.write(b"not json\n")
    assert [line.after for line in audit.read_from(path)] == [1, 2, 3, 4, 5, 6, 7]
    assert [line.after for line in audit.recent(path, 2, model="a")] == [5, 7]
    assert [line.after for line in audit.recent(path, 100, model="b")] == [2, 4, 6]
    assert audit.recent(path, 5, action="rollback") == []
    offset = audit.size(path)
    audit.append(path, AuditLine(time="t", actor="gateway", action="reload",
                                 config_sha256="abc"))
    assert audit.wait_for_reload(path, offset, "abc", 1).action == "reload"
    assert audit.wait_for_reload(path, offset, "other", 0.2, poll_s=0.05) is None
    assert audit.recent(tmp_path / "none.jsonl", 5) == []


def test_publish_snapshots_the_project_given(config, tmp_path):
    project = tmp_path / "proj"
    (project / "src").mkdir(parents=True)
    (project / "src" / "fn.py").write_bytes(SCRIPT.read_bytes())
    (project / "weights.txt").write_text("1")
    change, text = apply(config, edits.publish(
        "plain", script="src/fn.py", function="add", project=".", config_path=config,
        cwd=project))
    assert "        script: proj/src/fn.py\n        function: add\n        project: proj\n" \
        in text
    tree = snapshots.store_of(load(config)).tree(change.snapshot)
    assert sorted(p.name for p in tree.rglob("*") if p.is_file()) == ["fn.py", "weights.txt"]


def test_republish_serves_the_recorded_snapshot_or_refuses(config):
    change, text = apply(config, edits.republish("wine", 3, config))  # published before them
    assert (change.action, change.version) == ("republish", 3)
    assert "unpublished: true" not in text and f"snapshot: {change.snapshot}" in text
    with pytest.raises(edits.NothingToDo):
        edits.edit_file(config, edits.republish("wine", 3, config))
    apply(config, edits.unpublish("wine", 3))
    config.write_text(config.read_text().replace(change.snapshot, "sha256:" + "0" * 64))
    refused(config, edits.republish("wine", 3, config), "models.wine.versions.3.snapshot: ",
            f"sha256:{'0' * 64} is not in the store")


def test_unpublish_without_a_version_withdraws_the_whole_model(config):
    change, text = apply(config, edits.unpublish_model("wine"))
    assert (change.version, change.before, change.after) == (None, 1, None)
    assert "    unpublished: true\n" in text
    assert "every version" in change.summary() and "404" in change.summary()
    with pytest.raises(edits.NothingToDo):
        edits.edit_file(config, edits.unpublish_model("wine"))
