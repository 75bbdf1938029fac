"""What is measured: the gateway's base URL, the versions named, the token, and the body.

Everything is checked before any load is sent, through the gateway's own answers: the model's
catalogue entry (``GET /models/{model}``: versions, latest, production) and one call of each
version with the body, which must answer 200. A problem found here is the user's to fix, so
it is a :class:`BadInput` whose message says what to do; the command exits 2 with it.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import msgspec

LABELS = {"prod": "production", "production": "production", "latest": "latest"}
SHOWN_BYTES = 2000  # of an error body quoted back to the user


class BadInput(Exception):
    """The command cannot measure what it was asked to; exit status 2 with this message."""


class Unreachable(BadInput):
    """Nothing answers at the address (refused, no route, name unknown, timed out)."""


@dataclass(frozen=True)
class Version:
    """One version to measure, as the user named it (``2``, ``prod``, ``latest``)."""

    number: int
    named: str
    url: str  # always the numbered route, so a promotion during the run changes nothing

    @property
    def title(self) -> str:
        return f"v{self.number}" if self.named == str(self.number) else \
            f"v{self.number} ({self.named})"


@dataclass(frozen=True)
class Target:
    base: str  # http://host:port (and a path prefix, behind a proxy)
    model: str
    versions: list[Version]  # one, or two for an A/B: the baseline first
    token: str
    token_env: str
    body: bytes


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # as wrk: no proxy


def http(method: str, url: str, token: str = "", body: bytes | None = None,
         timeout: float = 15.0) -> tuple[int, bytes]:
    """(status, body) of one request; an unreachable address raises :class:`BadInput`."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with _opener.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        raise Unreachable(str(getattr(exc, "reason", exc))) from None


def base_url(url: str) -> str:
    """The gateway's base URL as given, without a trailing slash; a model URL is refused
    with the base it holds."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadInput(f"--url {url}: give the gateway's address, such as "
                       "http://127.0.0.1:8000")
    path = parts.path.rstrip("/")
    if "/models/" in path + "/":
        prefix = path[:path.find("/models")]
        raise BadInput(f"--url {url}: give the gateway's base URL "
                       f"({parts.scheme}://{parts.netloc}{prefix}), and the model with --model")
    return f"{parts.scheme}://{parts.netloc}{path}"


def url_from_config(path: str) -> str:
    """http://HOST:PORT from ``gateway.listen`` of a deployment file (an address listening on
    every interface is called on the loopback one)."""
    from gateway.config import ConfigError, load

    try:
        deployment = load(path, check_scripts=False, check_secrets=False)
    except ConfigError as exc:
        raise BadInput(str(exc)) from None
    host, _, port = deployment.gateway.listen.rpartition(":")
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "[::]": "[::1]"}.get(host, host)
    return f"http://{host}:{port}"


def example_from_config(path: str, model: str) -> bytes | None:
    """The model's ``example`` body in the deployment file, if it has one."""
    from gateway.config import load

    found = load(path, check_scripts=False, check_secrets=False).models.get(model)
    return None if found is None or found.example is None else msgspec.json.encode(found.example)


def read_body(text: str) -> bytes:
    """``--body``: JSON text, or ``@FILE`` holding it; it must be JSON."""
    if text.startswith("@"):
        try:
            with open(text[1:], "rb") as f:
                data = f.read()
        except OSError as exc:
            raise BadInput(f"--body {text}: cannot read the file: {exc.strerror}") from None
    else:
        data = text.encode()
    try:
        msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise BadInput(f"--body is not JSON ({exc}); send such as "
                       "'{\"data\": {...}}' or '{\"parameters\": [...]}'") from None
    return data


def error_message(body: bytes) -> str:
    """The ``message`` of one of the gateway's JSON errors, else the body as text."""
    try:
        return str(msgspec.json.decode(body)["error"]["message"])
    except (msgspec.DecodeError, KeyError, TypeError):
        return body[:SHOWN_BYTES].decode(errors="replace")


def _token_problem(status: int, model: str, token: str, token_env: str, body: bytes) -> str:
    if status == 401 and not token:
        return (f"model `{model}` needs an access token (401): put it in the environment "
                f"variable {token_env}, or name the variable that holds it with --token-env")
    if status == 401:
        return (f"the gateway does not accept the token in {token_env} (401: "
                f"{error_message(body)})")
    return (f"the token in {token_env} may not call model `{model}` (403: "
            f"{error_message(body)}); use a token that the model's access.tokens lists")


def describe_model(base: str, model: str, token: str, token_env: str) -> dict[str, Any]:
    """The model's catalogue entry; 401/403/404 and strangers as :class:`BadInput`."""
    try:
        status, body = http("GET", f"{base}/models/{urllib.parse.quote(model, safe='')}", token)
    except Unreachable as exc:
        raise Unreachable(f"no gateway answers at {base} ({exc}); is `modelgate serve` "
                          "running there?") from None
    if status in (401, 403):
        raise BadInput(_token_problem(status, model, token, token_env, body))
    if status == 404:
        served = ""
        code, listing = http("GET", f"{base}/models", token)
        if code == 200:
            try:
                names = [m["name"] for m in msgspec.json.decode(listing)["models"]]
                served = f"; the models you may call there: {', '.join(names) or 'none'}"
            except (msgspec.DecodeError, KeyError, TypeError):
                pass
        raise BadInput(f"no model `{model}` at {base} (404){served}")
    try:
        entry = msgspec.json.decode(body) if status == 200 else None
    except msgspec.DecodeError:
        entry = None
    if not isinstance(entry, dict) or "versions" not in entry:
        raise BadInput(f"{base} does not answer as a modelgate gateway: GET /models/{model} "
                       f"gave {status}: {body[:200].decode(errors='replace')}")
    return entry


def resolve(entry: dict[str, Any], named: str, base: str) -> Version:
    """A version number, ``prod`` or ``latest``, as the catalogue entry says today."""
    model = entry["name"]
    published = [v["number"] for v in entry["versions"] if v["published"]]
    if named in LABELS:
        number = int(entry[LABELS[named]])
    else:
        try:
            number = int(named)
        except ValueError:
            raise BadInput(f"version {named!r}: give a number, prod or latest") from None
        known = [v["number"] for v in entry["versions"]]
        if number not in known:
            raise BadInput(f"model `{model}` has no version {number}; published: "
                           f"{', '.join(map(str, published)) or 'none'}")
        if number not in published:
            raise BadInput(f"version {number} of model `{model}` is unpublished (it answers "
                           f"404); published: {', '.join(map(str, published))}")
    return Version(number, named, f"{base}/models/{urllib.parse.quote(model, safe='')}/"
                                  f"{number}/model")


def check_call(version: Version, model: str, body: bytes, token: str, token_env: str) -> None:
    """One call with the body; anything but a 200 stops the run with the answer shown."""
    try:
        status, answer = http("POST", version.url, token, body, timeout=60.0)
    except Unreachable as exc:
        raise Unreachable(f"the check call POST {version.url} got no answer ({exc})") from None
    if status == 200:
        return
    if status in (401, 403):
        raise BadInput(_token_problem(status, model, token, token_env, answer))
    shown = answer[:SHOWN_BYTES].decode(errors="replace")
    what = "the model rejected the body" if status == 400 else "the check call failed"
    raise BadInput(f"{what}: POST {version.url} answered {status}, not 200:\n  {shown}")


def find(base: str, model: str, names: list[str], body: bytes, token_env: str) -> Target:
    """The checked target: model and versions exist, the token is accepted, the body gets 200."""
    token = os.environ.get(token_env, "")
    entry = describe_model(base, model, token, token_env)
    versions = [resolve(entry, named, base) for named in names]
    if len(versions) == 2 and versions[0].number == versions[1].number:
        raise BadInput(f"--compare {','.join(names)}: both are version {versions[0].number} "
                       "today; nothing to compare")
    for version in versions:
        check_call(version, model, body, token, token_env)
    return Target(base, model, versions, token, token_env, body)
