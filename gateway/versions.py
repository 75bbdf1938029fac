"""Stable version ids: a hash of everything that defines what a version computes."""

from __future__ import annotations

import hashlib

import msgspec

from gateway.config import ConfigError, Deployment, Model, Version


def version_id(deployment: Deployment, name: str, model: Model, version: Version) -> str:
    """Same script bytes, function, language, env and options: same id, across restarts.
    Raises :class:`ConfigError` when the script cannot be read (validation read it, but it
    may have changed since: a reload then reports a bad config, not a crash)."""
    digest = hashlib.sha256()
    digest.update(name.encode())
    script = deployment.script_path(version)
    try:
        digest.update(script.read_bytes())
    except OSError as exc:
        n = next((n for n, v in model.versions.items() if v is version), "?")
        raise ConfigError(deployment.path, [f"models.{name}.versions.{n}.script: cannot read "
                                            f"{script}: {exc.strerror}"]) from None
    options = msgspec.structs.asdict(msgspec.structs.replace(version, unpublished=False))
    if options["tensors"] == "lists":  # the default: ids from before the key existed still hold
        del options["tensors"]
    digest.update(msgspec.msgpack.encode([options, sorted(model.env.items())]))
    return digest.hexdigest()[:24]
