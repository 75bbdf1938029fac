"""The CLI's version actions (SPEC §6, §8) as edits of the deployment file.

Each action (``promote``, ``rollback``, ``unpublish``, ``publish``) edits the YAML document
round-trip with ruamel.yaml, so comments, key order and quoting survive. An action refuses,
with a message that says what to do, anything the gateway would refuse or that makes no sense
(an unknown version, promoting an unpublished one...); :func:`edit_file` then validates the
edited text exactly as the gateway will read it before replacing the file atomically, so a
refused edit leaves the file as it was.
"""

from __future__ import annotations

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

from gateway.audit import Action, AuditLine
from gateway.config import ConfigError, GatewaySettings, load_bytes


class EditError(Exception):
    """An action that cannot be done; the message says why and what to do instead."""


class NothingToDo(Exception):
    """The file already says what the action asks for."""


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """What an action did to one model: ``before``/``after`` are its production versions."""

    action: Action
    model: str
    version: int
    before: int | None
    after: int | None

    def summary(self) -> str:
        moved = (f"production v{self.before} -> v{self.after}" if self.before != self.after
                 else f"production stays v{self.after}")
        return f"{self.model}: {self.action} v{self.version} ({moved})"


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
        raise EditError(f"no model named `{name}` (models in the file: {known})")
    return model


def _version(model: CommentedMap, name: str, n: int) -> CommentedMap:
    versions = model["versions"]
    version = versions.get(n, versions.get(str(n)))
    if not isinstance(version, CommentedMap):
        known = ", ".join(map(str, model["versions"])) or "none"
        raise EditError(f"model `{name}` has no version {n} (versions: {known})")
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


def publish(name: str, *, script: str, function: str, language: str | None = None,
            workers: int | None = None, config_path: str | os.PathLike[str],
            cwd: str | os.PathLike[str] | None = None) -> Edit:
    """Add the next version number. ``script`` is a path as typed in a shell (from ``cwd``),
    or one relative to the config file; it is written relative to the config file (absolute
    when the two have no directory in common)."""
    script_in_file = _script_for_file(script, Path(config_path).resolve().parent,
                                      Path(cwd or os.getcwd()))
    language = language or _language_of(script)

    def edit(doc: CommentedMap) -> Change:
        model = _model(doc, name)
        versions = model["versions"]
        n = max((int(k) for k in versions), default=0) + 1
        before = production(model)
        previous = versions.get(max(_published(model), default=-1))
        entry = CommentedMap([("language", language), ("script", script_in_file),
                              ("function", function)])
        copied = workers if workers is not None else (
            previous.get("workers") if isinstance(previous, CommentedMap) else None)
        if copied is not None:
            entry["workers"] = int(copied)
        if isinstance(previous, CommentedMap) and previous.fa.flow_style():
            entry.fa.set_flow_style()  # look like the versions around it
        versions[n] = entry
        return Change(action="publish", model=name, version=n, before=before,
                      after=production(model))

    return edit


def _script_for_file(script: str, config_dir: Path, cwd: Path) -> str:
    typed = Path(script)
    if typed.is_absolute():
        return str(typed)
    if (cwd / typed).is_file():
        found = (cwd / typed).resolve()
        if os.path.commonpath([found, config_dir]) == found.anchor:
            return str(found)  # no directory in common: a relative path would only confuse
        return os.path.relpath(found, config_dir)
    if (config_dir / typed).is_file():
        return str(typed)
    raise EditError(f"script {script} does not exist (looked in {cwd} and beside the config "
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
