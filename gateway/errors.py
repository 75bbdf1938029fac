"""The gateway's error hierarchy: each error knows its HTTP status and stable ``type``."""

from __future__ import annotations


class ModelgateError(Exception):
    status = 500
    type = "internal"
    headers: dict[str, str] = {}

    def __init__(self, message: str, status: int | None = None, type: str | None = None
                 ) -> None:
        """``status`` and ``type``: an error of its own, without a class (stable ``type``s
        are listed in docs/http-api.md)."""
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type


class BadRequest(ModelgateError):
    status, type = 400, "bad_request"


class Unauthorized(ModelgateError):
    status, type = 401, "unauthorized"
    # Bearer only: a Basic challenge makes browsers prompt and then send the cached credentials
    # with any request, cross-site forms included (Basic is still accepted when sent).
    headers = {"WWW-Authenticate": 'Bearer realm="modelgate"'}


class Forbidden(ModelgateError):
    status, type = 403, "forbidden"


class NotFound(ModelgateError):
    status, type = 404, "not_found"


class MethodNotAllowed(ModelgateError):
    status, type = 405, "method_not_allowed"


class RequestTimeout(ModelgateError):
    status, type = 408, "request_timeout"


class PayloadTooLarge(ModelgateError):
    status, type = 413, "payload_too_large"


class UnsupportedMediaType(ModelgateError):
    """A body of a type the route does not take (its message names the one it does)."""

    status, type = 415, "unsupported_media_type"


class Overloaded(ModelgateError):
    status, type = 503, "overloaded"
    headers = {"Retry-After": "1"}


class Unavailable(ModelgateError):
    status, type = 503, "unavailable"
    headers = {"Retry-After": "1"}


class WorkerLost(ModelgateError):
    status, type = 502, "worker_lost"


class Timeout(ModelgateError):
    status, type = 504, "timeout"


class CallFailed(ModelgateError):
    """An error reported by the worker (bad arguments, the function raised, ...)."""

    def __init__(self, status: int, type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
