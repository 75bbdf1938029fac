"""The CLI's version actions (SPEC §6, §8) as edits of the deployment file.

Each action (``promote``, ``rollback``, ``unpublish``, ``publish``) edits the YAML document
round-trip with ruamel.yaml, so comments, key order and quoting survive. An action refuses,
with a message that says what to do, anything the gateway would refuse or that makes no sense
(an unknown version, promoting an unpublished one...); :func:`edit_file` then validates the
edited text exactly as the gateway will read it before replacing the file atomically, so a
refused edit leaves the file as it was.
"""

from __future__ import annotations

import copy
import fcntl
import io
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError as RuamelYAMLError

from gateway import audit, environments, snapshots
from gateway.audit import Action, AuditLine
from gateway.config import ConfigError, Deployment, GatewaySettings, load_bytes


class EditError(Exception):
    """An action that cannot be done; the message says why and what to do instead."""


class UnknownTarget(EditError):
    """The model or version named does not exist."""


class NothingToDo(Exception):
    """The file already says what the action asks for."""


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """What an action did to one model: ``before``/``after`` are its production versions."""

    action: Action
    model: str
    version: int | None  # None: the whole model
    before: int | None
    after: int | None
    snapshot: str | None = None  # what a publish or republish serves

    def summary(self) -> str:
        moved = (f"production v{self.before} -> v{self.after}" if self.before != self.after
                 else f"production stays v{self.after}")
        if self.after is None:
            moved = "no version served: its routes answer 404"
        what = "every version" if self.version is None else f"v{self.version}"
        at = f"; snapshot {self.snapshot}" if self.snapshot else ""
        return f"{self.model}: {self.action} {what} ({moved}){at}"


Edit = Callable[[CommentedMap], Change]


# ------------------------------------------------------------------ reading the document

def round_trip() -> YAML:
    """A YAML reader/writer that keeps comments, order and quotes, and does not re-wrap."""
    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    rt.width = 4096
    return rt


def load_document(text: bytes, path: str) -> CommentedMap:
    try:
        doc = round_trip().load(text)
    except RuamelYAMLError as exc:
        raise EditError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(doc, CommentedMap) or not isinstance(doc.get("models"), CommentedMap):
        raise EditError(f"{path}: the document must be a mapping with a `models` section")
    return doc


def render(doc: CommentedMap) -> bytes:
    out = io.StringIO()
    round_trip().dump(doc, out)
    return out.getvalue().encode()


def audit_log_of(doc: CommentedMap, path: str | os.PathLike[str]) -> Path:
    """Where the file's audit log is (``gateway.audit_log``, relative to the file)."""
    settings = doc.get("gateway") or {}
    name = settings.get("audit_log") or GatewaySettings().audit_log
    return Path(path).resolve().parent / str(name)


def _model(doc: CommentedMap, name: str) -> CommentedMap:
    models = doc["models"]
    model = models.get(name)
    if not isinstance(model, CommentedMap) or not isinstance(model.get("versions"),
                                                                CommentedMap):
        known = ", ".join(map(str, models)) or "none"
        raise UnknownTarget(f"no model named `{name}` (models in the file: {known})")
    return model


def _version(model: CommentedMap, name: str, n: int) -> CommentedMap:
    versions = model["versions"]
    version = versions.get(n, versions.get(str(n)))
    if not isinstance(version, CommentedMap):
        known = ", ".join(map(str, model["versions"])) or "none"
        raise UnknownTarget(f"model `{name}` has no version {n} (versions: {known})")
    return version


def _published(model: CommentedMap) -> list[int]:
    return sorted(int(n) for n, v in model["versions"].items()
                  if isinstance(v, CommentedMap) and not v.get("unpublished", False))


def production(model: CommentedMap) -> int | None:
    """What ``labels/prod`` serves: the promoted version, or under basic routing the latest."""
    if model.get("routing", "basic") == "advanced":
        promoted = model.get("promoted")
        return None if promoted is None else int(promoted)
    published = _published(model)
    return published[-1] if published else None


def _advanced(model: CommentedMap, name: str, action: str) -> None:
    if model.get("routing", "basic") != "advanced":
        raise EditError(f"model `{name}` uses basic routing (production is always its latest "
                        f"version), so there is nothing to {action}; set `routing: advanced` "
                        "and `promoted: N` on the model to choose its production version")


# ------------------------------------------------------------------ the actions

def promote(name: str, n: int) -> Edit:
    def edit(doc: CommentedMap) -> Change:
        model = _model(doc, name)
        version = _version(model, name, n)
        _advanced(model, name, "promote")
        if version.get("unpublished", False):
            raise EditError(f"version {n} of `{name}` is unpublished; publish it again "
                            f"(remove `unpublished: true`) before promoting it")
        before = production(model)
        if before == n:
            raise NothingToDo(f"{name}: v{n} is already the promoted version")
        model["promoted"] = n
        return Change(action="promote", model=name, version=n, before=before, after=n)

    return edit


def rollback(name: str, history: Iterable[AuditLine]) -> Edit:
    """Back to the version promoted before the current one, as the audit log remembers it.

    Each rollback undoes one more promotion (promote 1->2, 2->3, then rollback twice: 2, 1)."""

    def edit(doc: CommentedMap) -> Change:
        model = _model(doc, name)
        _advanced(model, name, "roll back")
        current = production(model)
        earlier = [n for n in previous_promotions(history, name) if n != current]
        if not earlier:
            raise EditError(f"the audit log has no earlier promotion of `{name}` to roll back "
                            f"to; choose a version with `modelgate promote {name} N`")
        target = earlier[-1]
        version = _version(model, name, target)
        if version.get("unpublished", False):
            raise EditError(f"the previously promoted version {target} of `{name}` is "
                            "unpublished; choose a version with "
                            f"`modelgate promote {name} N`")
        model["promoted"] = target
        return Change(action="rollback", model=name, version=target, before=current,
                      after=target)

    return edit


def previous_promotions(history: Iterable[AuditLine], name: str) -> list[int]:
    """The versions a rollback may return to, the next one last: each successful promotion
    pushes the version it replaced, each rollback pops one."""
    stack: list[int] = []
    for line in history:
        if line.model != name or line.result != "ok":
            continue
        if line.action == "promote" and line.before is not None and line.before != line.after:
            stack.append(line.before)
        elif line.action == "rollback" and stack:
            stack.pop()
    return stack


def unpublish(name: str, n: int) -> Edit:
    def edit(doc: CommentedMap) -> Change:
        model = _model(doc, name)
        version = _version(model, name, n)
        if version.get("unpublished", False):
            raise NothingToDo(f"{name}: v{n} is already unpublished")
        if model.get("routing", "basic") == "advanced" and model.get("promoted") == n:
            raise EditError(f"version {n} is the promoted version of `{name}`; promote another "
                            f"version first (`modelgate promote {name} N`), then unpublish it")
        if _published(model) == [n]:
            raise EditError(f"version {n} is the only published version of `{name}`; publish "
                            "another version first")
        before = production(model)
        version["unpublished"] = True
        return Change(action="unpublish", model=name, version=n, before=before,
                      after=production(model))

    return edit


def unpublish_model(name: str) -> Edit:
    """Withdraw a whole model (``unpublished: true`` on it): no version is served, every
    route of the model answers 404; its versions and snapshots stay for ``republish``."""

    def edit(doc: CommentedMap) -> Change:
        model = _model(doc, name)
        if model.get("unpublished", False):
            raise NothingToDo(f"{name}: the model is already unpublished")
        before = production(model)
        model["unpublished"] = True
        return Change(action="unpublish", model=name, version=None, before=before, after=None)

    return edit


def republish(name: str, n: int, config_path: str | os.PathLike[str]) -> Edit:
    """Serve version ``n`` again, exactly as published: from its snapshot, which must still be
    in the store (a version published before snapshots existed gets one now)."""

    def edit(doc: CommentedMap) -> Change:
        model = _model(doc, name)
        version = _version(model, name, n)
        if not version.get("unpublished", False) and not model.get("unpublished", False):
            raise NothingToDo(f"{name}: v{n} is already published")
        before = production(model)
        version.pop("unpublished", None)
        model.pop("unpublished", None)
        snapshot = _snapshot(doc, name, n, config_path)
        return Change(action="republish", model=name, version=n, before=before,
                      after=production(model), snapshot=snapshot)

    return edit


def publish(name: str, *, script: str, function: str, language: str | None = None,
            workers: int | None = None, config_path: str | os.PathLike[str],
            project: str | None = None, requirements: str | None = None,
            cwd: str | os.PathLike[str] | None = None, snapshot: str | None = None) -> Edit:
    """Add the next version number, with a snapshot of its project and its environment
    built (``requirements``, a file in the project; by default the environment of the latest
    published version in the same language). ``script`` (and
    ``project``) are paths as typed in a shell (from ``cwd``), or relative to the config
    file; they are written relative to the config file (absolute when the two have no
    directory in common). ``snapshot``: the project is already in the store under this id
    (the HTTP API unpacks it there), so the version records it instead of taking one."""
    config_dir, here = Path(config_path).resolve().parent, Path(cwd or os.getcwd())
    script_in_file = _path_for_file(script, config_dir, here, "script")
    project_in_file = None if project is None else _path_for_file(project, config_dir, here,
                                                                   "project")
    language = language or _language_of(script)

    def edit(doc: CommentedMap) -> Change:
        model = _model(doc, name)
        versions = model["versions"]
        n = max((int(k) for k in versions), default=0) + 1
        before = production(model)
        previous = versions.get(max(_published(model), default=-1))
        entry = CommentedMap([("language", language), ("script", script_in_file),
                              ("function", function)])
        if project_in_file is not None:
            entry["project"] = project_in_file
        copied = workers if workers is not None else (
            previous.get("workers") if isinstance(previous, CommentedMap) else None)
        if copied is not None:
            entry["workers"] = int(copied)
        environment = _environment_entry(previous, language, requirements)
        if environment is not None:
            entry["environment"] = environment
        if isinstance(previous, CommentedMap) and previous.fa.flow_style():
            entry.fa.set_flow_style()  # look like the versions around it
        if snapshot is not None:
            entry["snapshot"] = snapshot
        versions[n] = entry
        taken = _snapshot(doc, name, n, config_path)
        _environment(doc, name, n, config_path)
        return Change(action="publish", model=name, version=n, before=before,
                      after=production(model), snapshot=taken)

    return edit


def withdraw(name: str, n: int, snapshot: str | None) -> Edit:
    """Take back a version just published that could not be served: remove its entry, if the
    file still holds it as published (the same snapshot, not yet promoted)."""

    def edit(doc: CommentedMap) -> Change:
        model = _model(doc, name)
        version = _version(model, name, n)
        if version.get("snapshot") != snapshot or model.get("promoted") == n:
            raise NothingToDo(f"{name}: v{n} changed since it was published; left as it is")
        before = production(model)
        del model["versions"][n if n in model["versions"] else str(n)]
        return Change(action="publish", model=name, version=n, before=before,
                      after=production(model), snapshot=snapshot)

    return edit


def _environment_entry(previous: Any, language: str,
                       requirements: str | None) -> CommentedMap | None:
    if requirements is not None:
        entry = CommentedMap([("requirements", requirements)])
        entry.fa.set_flow_style()
        return entry
    if (isinstance(previous, CommentedMap) and previous.get("language") == language
            and isinstance(previous.get("environment"), CommentedMap)):
        return copy.deepcopy(previous["environment"])
    return None


def _snapshot(doc: CommentedMap, name: str, n: int, config_path: str | os.PathLike[str]) -> str:
    """Version ``n``'s snapshot: the one it records, checked to be in the store, or one taken
    of its project now and recorded in ``doc``."""
    deployment = _as_deployment(doc, config_path)
    model = deployment.models[name]
    version = model.versions[n]
    where = f"models.{name}.versions.{n}"
    try:
        if version.snapshot is not None:
            snapshots.store_of(deployment).tree(version.snapshot)
            return version.snapshot
        snapshot = snapshots.take(deployment, model, version)
    except snapshots.SnapshotError as exc:
        field = "project" if version.snapshot is None else "snapshot"
        raise EditError(f"{deployment.path}: {where}.{field}: {exc}") from None
    _version(_model(doc, name), name, n)["snapshot"] = snapshot
    return snapshot


def _environment(doc: CommentedMap, name: str, n: int,
                 config_path: str | os.PathLike[str]) -> None:
    """Build version ``n``'s environment now: a publish that cannot have it is refused."""
    deployment = _as_deployment(doc, config_path)
    model = deployment.models[name]
    try:
        environments.build(deployment, model, model.versions[n])
    except environments.BuildError as exc:
        raise EditError(f"{deployment.path}: models.{name}.versions.{n}.environment: "
                        f"{exc}") from None


def _as_deployment(doc: CommentedMap, config_path: str | os.PathLike[str]) -> Deployment:
    path = str(Path(config_path).resolve())
    try:
        return load_bytes(render(doc), path, check_secrets=False)
    except ConfigError as exc:
        raise EditError(f"the edited file would not be valid, so it was left unchanged:\n"
                        f"{exc}") from None


def record_snapshots(served: Deployment, taken: dict[tuple[str, int], str]) -> bytes | None:
    """Write the snapshots a gateway took (of versions of ``served`` that had none) into its
    file, so it says what is served; a version whose ``script`` changed since is left alone.
    Returns the new text (None: nothing to record). Raises OSError when the file cannot be
    replaced."""
    scripts = {(m, n): served.models[m].versions[n].script for m, n in taken}
    path = Path(served.path).resolve()
    with _locked(path.parent):
        doc = load_document(path.read_bytes(), str(path))
        changed = False
        for (name, n), snapshot in taken.items():
            model = doc["models"].get(name)
            versions = model.get("versions") if isinstance(model, CommentedMap) else None
            version = None if versions is None else versions.get(n, versions.get(str(n)))
            if (isinstance(version, CommentedMap) and "snapshot" not in version
                    and version.get("script") == scripts[(name, n)]):
                version["snapshot"] = snapshot
                changed = True
        if not changed:
            return None
        text = render(doc)
        write_atomically(path, text)
        return text


def _path_for_file(script: str, config_dir: Path, cwd: Path, what: str) -> str:
    typed = Path(script)
    if typed.is_absolute():
        return str(typed)
    if (cwd / typed).exists():
        found = (cwd / typed).resolve()
        if os.path.commonpath([found, config_dir]) == found.anchor:
            return str(found)  # no directory in common: a relative path would only confuse
        return os.path.relpath(found, config_dir)
    if (config_dir / typed).exists():
        return str(typed)
    raise EditError(f"{what} {script} does not exist (looked in {cwd} and beside the config "
                    f"in {config_dir})")


def _language_of(script: str) -> str:
    suffix = Path(script).suffix
    if suffix == ".py":
        return "python"
    if suffix in (".R", ".r"):
        return "r"
    raise EditError(f"cannot tell the language of {script} from its name; give --language "
                    "python or --language r")


# ------------------------------------------------------------------ the file

class Applied(msgspec.Struct, frozen=True, kw_only=True):
    """An edit made and audited: the new text, its digest (the gateway's reload line names
    it), and the audit log's problem when the line could not be appended (None: it was)."""

    change: Change
    text: bytes
    digest: str
    audit_log: Path
    audit_problem: str | None = None


def apply(path: str | os.PathLike[str], make_edit: Callable[[Path], Edit], actor: str,
          failure: str | None = None) -> Applied:
    """Edit the file (validated, atomic) and append the action to its audit log: what the CLI
    and the HTTP API both do. ``make_edit`` gets the audit log's path (rollback reads it).
    Raises :class:`EditError` or :class:`NothingToDo`, the file unchanged. ``failure``: the
    edit undoes an action that failed, and the line says why (``result: failed``)."""
    path = Path(path).resolve()  # a symlink: the file it names is read, edited, reloaded
    try:
        original = path.read_bytes()
    except OSError as exc:
        raise EditError(f"{path}: cannot read the file: {exc.strerror}") from None
    audit_log = audit_log_of(load_document(original, str(path)), path)
    change, text = edit_file(path, make_edit(audit_log))
    digest = audit.config_sha256(text)
    problem = None
    try:
        audit.append(audit_log, audit.AuditLine(
            time=audit.now(), actor=actor, action=change.action, model=change.model,
            version=change.version, before=change.before, after=change.after,
            details=change.summary() if failure is None else failure,
            config_sha256=digest, snapshot=change.snapshot,
            result="ok" if failure is None else "failed"))
    except OSError as exc:
        problem = f"cannot append to the audit log {audit_log}: {exc.strerror}"
    return Applied(change=change, text=text, digest=digest, audit_log=audit_log,
                   audit_problem=problem)


def read_only_problem(path: str | os.PathLike[str]) -> str | None:
    """Why an edit of the file cannot be written (None: it can): an edit writes a new file
    beside it and renames it over the old one, so its directory must be writable."""
    path = Path(path).resolve()
    directory = path.parent
    try:
        mounted_read_only = bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        mounted_read_only = False
    if not mounted_read_only and os.access(directory, os.W_OK):
        return None
    why = "is on a read-only mount" if mounted_read_only else "cannot be written by this user"
    return (f"the config file {path} cannot be edited: its directory {directory} {why} "
            "(a Kubernetes ConfigMap volume is read-only). Versions are published by editing "
            "that file, so serve a copy on a writable volume: set the volume mount's "
            "`readOnly: false` (for a ConfigMap, copy it into a writable volume such as the "
            "state volume at start and serve that copy), and let the gateway's user write "
            "the directory")

def edit_file(path: str | os.PathLike[str], edit: Edit) -> tuple[Change, bytes]:
    """Apply ``edit`` to the file: validate the result as the gateway will read it, then
    replace the file atomically. Returns the change and the new text; raises
    :class:`EditError` (the file is unchanged) or :class:`NothingToDo`. A symlink is
    followed: the file it names is replaced, and the link stays."""
    path = Path(path).resolve()
    with _locked(path.parent):
        try:
            original = path.read_bytes()
        except OSError as exc:
            raise EditError(f"{path}: cannot read the file: {exc.strerror}") from None
        doc = load_document(original, str(path))
        change = edit(doc)
        text = render(doc)
        problem = validation_error(text, str(path))
        if problem is not None:
            if validation_error(original, str(path)) is not None:
                raise EditError(f"the file is not valid as it is; fix it first:\n{problem}")
            raise EditError(f"the edited file would not be valid, so it was left unchanged:\n"
                            f"{problem}")
        try:
            write_atomically(path, text)
        except OSError as exc:  # e.g. a read-only directory, or a file mounted on its own
            raise EditError(f"{path}: cannot replace the file ({exc.strerror or exc}), so it "
                            "is unchanged; an edit writes a new file beside it and renames it "
                            f"over this one, so {path.parent} must be writable by you and the "
                            "file must not be mounted on its own") from None
    return change, text


def validation_error(text: bytes, path: str) -> str | None:
    """The gateway's own validation of ``text``, as the error message, or None when valid
    (secrets are the gateway's to check: the CLI user need not hold the token variables)."""
    try:
        load_bytes(text, path, check_secrets=False)
    except ConfigError as exc:
        return str(exc)
    return None


def write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never a part: a temporary file in the same
    directory, flushed, then renamed over the old one (keeping its permissions)."""
    directory = path.resolve().parent
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.chmod(temporary, path.stat().st_mode & 0o7777)
        except FileNotFoundError:
            pass
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextmanager
def _locked(directory: Path) -> Iterator[Any]:
    """One edit at a time per directory (two CLIs promoting at once must not lose one)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
