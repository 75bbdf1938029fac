"""The routing table: which version answers ``latest``, ``labels/prod`` or ``{n}``.

Built whole from a deployment and swapped whole, so a request sees one consistent table.
Each served version carries its pre-encoded ``release`` block, so answering a call does not
encode it again.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from gateway.api import Release
from gateway.config import Model
from gateway.errors import NotFound
from gateway.serving.dispatcher import VersionPool

MAX_VERSION_DIGITS = 18  # a longer number names no version (and int() of 5,000 digits fails)


@dataclass(frozen=True, eq=False)
class Served:
    """One published version: its pool and the bytes that name it in responses."""

    number: int
    pool: VersionPool
    release: bytes


@dataclass(frozen=True, eq=False)
class ModelRoutes:
    name: str
    config: Model
    public: bool
    allowed: frozenset[str]
    versions: dict[int, Served]
    unpublished: frozenset[int]
    latest: int
    production: int

    def pick(self, label: str) -> Served:
        """``latest``, ``prod`` or a version number: the version that answers."""
        if label == "latest":
            return self.versions[self.latest]
        if label == "prod":
            return self.versions[self.production]
        number = int(label) if len(label) <= MAX_VERSION_DIGITS else -1
        served = self.versions.get(number)
        if served is not None:
            return served
        if number in self.unpublished:
            raise NotFound(f"version {number} of model `{self.name}` is unpublished")
        shown = label if number >= 0 else f"{label[:MAX_VERSION_DIGITS]}..."
        raise NotFound(f"model `{self.name}` has no version {shown}; "
                       f"published: {', '.join(map(str, sorted(self.versions)))}")


def model_routes(name: str, model: Model, pools: dict[int, VersionPool],
                 scripts: dict[int, str]) -> ModelRoutes:
    """``scripts``: each version's script, as a path in its project."""
    versions = {
        n: Served(n, pool, msgspec.json.encode(Release(
            name, pool.version_id, n, script=scripts[n], function=model.versions[n].function)))
        for n, pool in pools.items()
    }
    latest = max(versions)
    production = model.production or latest
    return ModelRoutes(
        name=name, config=model, public=model.access.public,
        allowed=frozenset(model.access.tokens), versions=versions,
        unpublished=frozenset(n for n, v in model.versions.items() if v.unpublished),
        latest=latest, production=production,
    )


class RoutingTable:
    def __init__(self, models: dict[str, ModelRoutes],
                 unpublished: frozenset[str] | set[str] = frozenset()) -> None:
        self.models = models
        self.unpublished = unpublished  # models in the file with every version withdrawn

    def model(self, name: str) -> ModelRoutes:
        routes = self.models.get(name)
        if routes is None:
            if name in self.unpublished:
                raise NotFound(f"model `{name}` is unpublished")
            raise NotFound(f"no model named `{name}`")
        return routes
