"""Stable version ids (``model_version``): a hash of everything that defines what a version
computes, and nothing that depends on the machine (no absolute path)."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from gateway.config import ConfigError, Deployment, Model, Version


class Identity(msgspec.Struct, array_like=True, frozen=True):
    """What ``model_version`` hashes: the project's snapshot, the script's place in it, the
    function, language, options and env, and the environment (its resolved lock's hash)."""

    model: str
    snapshot: str
    script: str
    function: str
    language: str
    options: dict[str, Any]  # the version's options, with the fields above blanked (and
    # async_timeout_s left out: a limit on waiting, not what the version computes; a map of
    # the same keys in the same order encodes as the Struct did, so ids did not change)
    env: list[tuple[str, str]]
    environment_lock: str


def version_id(deployment: Deployment, name: str, model: Model, version: Version,
               environment_lock: str = "") -> str:
    """Same snapshot, script, function, language, options, env and environment: same id, on
    any machine and across restarts; one changed byte in any project file: another id. The
    version must have its snapshot (see :func:`gateway.snapshots.prepare`)."""
    if version.snapshot is None:
        n = next((n for n, v in model.versions.items() if v is version), "?")
        raise ConfigError(deployment.path, [f"models.{name}.versions.{n}.snapshot: the "
                                            "version has no snapshot of its project yet"])
    script = deployment.script_path(version).relative_to(
        deployment.project_path(model, version)).as_posix()
    options = msgspec.structs.asdict(msgspec.structs.replace(
        version, unpublished=False, script="", project=None, snapshot=None, function="",
        environment=None))
    if options["tensors"] == "lists":  # the default: ids from before the key existed still hold
        del options["tensors"]
    del options["async_timeout_s"]
    identity = Identity(model=name, snapshot=version.snapshot, script=script,
                        function=version.function, language=version.language, options=options,
                        env=sorted(model.env.items()), environment_lock=environment_lock)
    return hashlib.sha256(msgspec.msgpack.encode(identity)).hexdigest()[:24]
