"""The bodies that both the gateway writes and a client of it (the CLI) decodes.

They sit below both, so that ``modelgate reload --url`` reads the admin API's answers without
importing the server. Every body the gateway writes is described by its own Struct (see
:mod:`gateway.web.openapi`); those that only the server writes stay next to their routes.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from gateway import __version__


class ErrorDetail(msgspec.Struct, frozen=True):
    type: str
    message: str
    request_id: str | None = None


class ErrorBody(msgspec.Struct, frozen=True):
    """Every error the gateway returns: ``{"error": {"type", "message", "request_id"}}``."""

    error: ErrorDetail


class Release(msgspec.Struct, frozen=True):
    """The ``release`` block of every response."""

    model: str
    model_version: str
    model_version_number: int
    harness_version: str = __version__
    script: str = ""  # the file and function which power it (the script's path in its project)
    function: str = ""


class CallResponse(msgspec.Struct, frozen=True):
    """The answer to a model call (the call route writes its bytes around the worker's
    result, which is never decoded in the gateway)."""

    result: Any
    release: Release
    request_id: str
    model_time_in_ms: float
    timing: float


class ReloadRequest(msgspec.Struct, frozen=True):
    """The body of ``POST /admin/reload``, ``/rollback`` and ``/unpublish``: ``{}``. It carries
    nothing; its JSON Content-Type is what a cross-site form cannot send, so a browser holding
    an admin's credentials cannot act."""


class ReloadReport(msgspec.Struct, frozen=True, kw_only=True):
    """What a reload did: pools started, kept warm and stopped, where production goes, and
    the changed gateway settings that only a restart applies (``gateway.max_body_bytes``...)."""

    config: str
    config_sha256: str
    started: list[str]
    kept: list[str]
    stopped: list[str]
    production: dict[str, int]
    needs_restart: list[str] = []


class ActionResult(msgspec.Struct, frozen=True, kw_only=True):
    """What an action did: ``changed`` false when the file already said so."""

    model: str
    action: str
    version: int | None
    production_before: int | None
    production: int | None
    changed: bool
    message: str
    model_version: str | None = None  # the version acted on, where it is served
    snapshot: str | None = None


class VersionInfo(msgspec.Struct, frozen=True, kw_only=True):
    number: int
    snapshot: str | None
    language: str
    script: str
    function: str
    created: str | None  # when it was published (the audit log), None when it does not say
    actor: str | None
    state: Literal["serving", "starting", "failing", "unpublished"]
    production: bool  # what labels/prod serves
    model_version: str | None


class VersionList(msgspec.Struct, frozen=True):
    model: str
    production: int | None
    versions: list[VersionInfo]
