"""Stable version ids: a hash of everything that defines what a version computes."""

from __future__ import annotations

import hashlib

import msgspec

from gateway.config import Deployment, Model, Version


def version_id(deployment: Deployment, name: str, model: Model, version: Version) -> str:
    """Same script bytes, function, language, env and options: same id, across restarts."""
    digest = hashlib.sha256()
    digest.update(name.encode())
    digest.update(deployment.script_path(version).read_bytes())
    options = msgspec.structs.replace(version, unpublished=False)
    digest.update(msgspec.msgpack.encode([options, sorted(model.env.items())]))
    return digest.hexdigest()[:24]
