"""The deployment config: YAML in, validated msgspec Structs out, or errors a user can act on.

Every error names the file and the path in the document (``models.wine.versions.2.script``)
and says what is wrong, so ``modelgate check`` and a refused start read the same way.
Defaults live on the Struct fields, in one place.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
from pathlib import Path
from typing import Any, Literal

import msgspec
import yaml

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
SNAPSHOT = re.compile(r"^sha256:[0-9a-f]{64}$")
MAX_BUSY_POLL_US = 10_000  # a worker kept awake longer than 10 ms buys nothing more


class Batch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    max_size: int = 32
    max_wait_ms: float = 2.0


class Environment(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a version runs with besides its project: Python packages (``requirements``, a
    requirements or lock file in the project, installed with uv into a venv of their own) or
    R library directories (``r_libs``, in the project, put first on ``.libPaths()``)."""

    requirements: str | None = None
    r_libs: list[str] = []


class Version(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    language: Literal["python", "r"]
    script: str
    function: str
    project: str | None = None  # None: the model's, else the script's directory
    snapshot: str | None = None  # sha256:...: the project as published (gateway.snapshots)
    environment: Environment | None = None
    workers: int = 1
    timeout_s: float | None = None  # None: gateway.request_timeout_s
    preload: bool = True
    unpublished: bool = False
    max_queue: int | None = None  # None: gateway.max_queue
    slots: int = 32  # the most calls a worker may hold (the gateway adapts below it)
    batch: Batch | None = None
    # numpy: V2 inference calls reach the function as NumPy arrays, made in the worker
    tensors: Literal["lists", "numpy"] = "lists"
    async_timeout_s: float | None = None  # an async prediction's limit; None: the gateway's


class Access(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    public: bool = False
    tokens: list[str] = []


class Model(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    versions: dict[int, Version]
    description: str = ""
    project: str | None = None  # the directory its versions snapshot (default: the script's)
    unpublished: bool = False  # true: no version is served, every route answers 404
    access: Access = Access()
    routing: Literal["basic", "advanced"] = "basic"
    promoted: int | None = None
    env: dict[str, str] = {}
    example: Any = None  # a request body shown in the web tester and the start-up curl line

    @property
    def production(self) -> int | None:
        """The version ``labels/prod`` serves: the promoted one under advanced routing, else
        the latest published one (None when none is published)."""
        if self.unpublished:
            return None
        if self.routing == "advanced" and self.promoted is not None:
            return self.promoted
        return max((n for n, v in self.versions.items() if not v.unpublished), default=None)


_SEALED: dict[str, str] = {}  # secret variables moved out of the environment (seal_secrets)


def secret_env(name: str) -> str | None:
    """The value of the secret variable ``name``, also once :func:`seal_secrets` took it out
    of the process environment."""
    return os.environ.get(name, _SEALED.get(name))


def seal_secrets(deployment: Deployment) -> list[str]:
    """Move the variables the deployment reads secrets from (tokens' ``env`` and
    ``sha256_env``, ``workers_curve.secret_key_env``) out of ``os.environ`` into this module,
    so that nothing started later inherits them and nothing reads them there; reloads still
    see them (:func:`secret_env`). Returns the names moved."""
    names = [n for t in deployment.tokens.values() for n in (t.env, t.sha256_env) if n]
    curve = deployment.gateway.workers_curve
    if curve is not None and curve.secret_key_env:
        names.append(curve.secret_key_env)
    moved = []
    for name in names:
        if name in os.environ:
            _SEALED[name] = os.environ.pop(name)
            moved.append(name)
    return moved


class TokenRef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A named token: the hex SHA-256 of its value (inline, or in the variable ``sha256_env``,
    e.g. from a Kubernetes Secret), or the variable ``env`` that holds the value itself."""

    sha256: str | None = None
    sha256_env: str | None = None
    env: str | None = None
    admin: bool = False

    def digest_hex(self) -> str | None:
        """The expected SHA-256 in hex, where the config gives a hash rather than a value."""
        if self.sha256_env is not None:
            return (secret_env(self.sha256_env) or "").strip().lower()
        return self.sha256


class CurveSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """CURVE keys for remote workers over TCP (``modelgate keys new NAME`` makes key pairs).

    The gateway's secret key comes from a ZeroMQ certificate file (``secret_key_file``) or a
    variable holding its Z85 secret key (``secret_key_env``), never from this file itself;
    ``authorized_keys`` is a directory of workers' public certificates: a worker whose key is
    not there is refused."""

    authorized_keys: str
    secret_key_file: str | None = None
    secret_key_env: str | None = None
    # a worker key's name (its NAME.key in authorized_keys) -> the only models it may serve;
    # a key not named here may serve any model
    key_models: dict[str, list[str]] = {}


class GatewaySettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    listen: str = "127.0.0.1:8000"
    request_timeout_s: float = 30.0
    max_body_bytes: int = 10 * 1024 * 1024
    max_queue: int = 1024
    audit_log: str = "audit.jsonl"
    access_log: bool = True
    startup_timeout_s: float = 120.0
    drain_timeout_s: float = 30.0
    workers_listen: str | None = None  # tcp://HOST:PORT: remote workers may join pools here
    workers_curve: CurveSettings | None = None  # required with a tcp:// workers_listen
    async_db: str = "async.sqlite3"  # async predictions' SQLite file (":memory:": not kept)
    async_result_ttl_s: float = 86400.0  # how long finished async predictions can be read
    async_max_queued: int = 10000  # async predictions waiting to run; more: 503 overloaded
    async_timeout_s: float = 3600.0  # an async prediction's time limit (not timeout_s)
    state_dir: str = ".modelgate"  # snapshots and environments (relative: beside this file)
    snapshot_max_bytes: int = 4 * 1024**3  # the most a project's snapshot may hold
    publish_max_bytes: int = 512 * 1024**2  # the most a published tar.gz may hold, compressed
    worker_log_lines: int = 1000  # the last worker log lines kept per version (admin API)
    gc_keep_days: float = 30.0  # `modelgate gc` keeps what the audit log named this recently
    async_max_stored: int = 10000  # async predictions kept (queued or finished); more: 503
    async_max_bytes: int = 1024**3  # their bodies and results together; more: 503
    header_timeout_s: float = 10.0  # a request's headers, from its first byte; then 408
    body_timeout_s: float = 30.0  # a request's body, once its handler reads it; then 408
    idle_timeout_s: float = 75.0  # a keep-alive connection with no request; then closed
    max_connections: int = 1000  # open at once; the next one gets 503 and is closed
    # the user pools (and so the models' code) run as when the gateway starts as root;
    # None: nobody (see gateway.serving.worker_user)
    worker_user: str | None = None
    # after answering the only call in flight, a worker polls this long for the next one
    # before it sleeps (0: never); see gateway.serving.dispatcher
    busy_poll_us: int = 500


class Deployment(msgspec.Struct, frozen=True):
    """A whole deployment; ``path`` is the file it came from (relative paths resolve beside it),
    ``sha256`` the hex digest of the bytes read there (empty for a document parsed directly)."""

    path: str
    gateway: GatewaySettings = GatewaySettings()
    tokens: dict[str, TokenRef] = {}
    models: dict[str, Model] = {}
    sha256: str = ""

    @property
    def base_dir(self) -> Path:
        return Path(self.path).resolve().parent

    def script_path(self, version: Version) -> Path:
        return (self.base_dir / version.script).resolve()

    def project_path(self, model: Model, version: Version) -> Path:
        """The directory a version snapshots: its ``project``, its model's, or the script's."""
        project = version.project or model.project
        if project is None:
            return self.script_path(version).parent
        return (self.base_dir / project).resolve()

    @property
    def state_path(self) -> Path:
        """Where snapshots and environments are kept (``gateway.state_dir``)."""
        return self.base_dir / self.gateway.state_dir


class ConfigError(Exception):
    """An invalid config; ``problems`` lists every ``path: what is wrong`` found."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(f"{path}: {p}" for p in problems))


def _convert(raw: Any, kind: type, where: str, problems: list[str]) -> Any:
    try:
        return msgspec.convert(raw, kind, str_keys=True)
    except msgspec.ValidationError as exc:
        message, _, at = str(exc).partition(" - at `$")
        at = at.rstrip("`").lstrip(".")
        problems.append(f"{'.'.join(p for p in (where, at) if p)}: {message}")
        return None


def load(path: str | os.PathLike[str], *, check_scripts: bool = True,
         check_secrets: bool = True) -> Deployment:
    """Read and validate a deployment file; raise :class:`ConfigError` listing every problem."""
    path = str(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ConfigError(path, [f"cannot read the file: {exc.strerror}"]) from None
    return load_bytes(data, path, check_scripts=check_scripts, check_secrets=check_secrets)


def load_bytes(data: bytes, path: str, **checks: bool) -> Deployment:
    """Validate a deployment file's bytes already read from ``path`` (see :func:`load`)."""
    try:
        raw = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise ConfigError(path, [f"not valid YAML: {exc}"]) from None
    deployment = parse(raw, path, **checks)
    return msgspec.structs.replace(deployment, sha256=hashlib.sha256(data).hexdigest())


def parse(raw: Any, path: str, *, check_scripts: bool = True,
          check_secrets: bool = True) -> Deployment:
    """Validate an already-read YAML document (see :func:`load`). ``check_secrets=False``
    skips what only the gateway needs (token variables, its CURVE secret): for a remote
    worker host that reads the same file."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError(path, ["the document must be a mapping with a `models` section"])
    unknown = set(raw) - {"gateway", "tokens", "models"}
    if unknown:
        problems.append(f"unknown section(s) {', '.join(sorted(map(str, unknown)))}; "
                        "expected gateway, tokens, models")
    gateway = _convert(raw.get("gateway") or {}, GatewaySettings, "gateway", problems)
    tokens = {}
    raw_tokens = raw.get("tokens") or {}
    if not isinstance(raw_tokens, dict):
        problems.append("tokens: expected a mapping of token names to {sha256: ...} or "
                        "{env: VARIABLE}")
        raw_tokens = {}
    for name, ref in raw_tokens.items():
        token = _convert(ref, TokenRef, f"tokens.{name}", problems)
        if token is not None:
            tokens[str(name)] = token
            if check_secrets:
                problems.extend(_token_problems(str(name), token))
    models = {}
    incomplete = set()  # models with a version that did not convert (already reported)
    raw_models = raw.get("models")
    if not isinstance(raw_models, dict) or not raw_models:
        problems.append("models: at least one model is required")
        raw_models = {}
    for name, raw_model in raw_models.items():
        before = len(problems)
        model = _convert_model(raw_model, f"models.{name}", problems)
        if model is not None:
            models[str(name)] = model
            if len(problems) > before:
                incomplete.add(str(name))
    deployment = Deployment(path=path, gateway=gateway or GatewaySettings(), tokens=tokens,
                            models=models)
    if gateway is not None and check_secrets:
        problems.extend(_remote_problems(deployment))
    if gateway is not None and not 0 <= gateway.busy_poll_us <= MAX_BUSY_POLL_US:
        problems.append(f"gateway.busy_poll_us: must be 0 (never) to {MAX_BUSY_POLL_US}")
    for name, model in models.items():
        problems.extend(_model_problems(deployment, name, model, check_scripts,
                                        name not in incomplete))
    if problems:
        raise ConfigError(path, problems)
    return deployment


def _convert_model(raw: Any, where: str, problems: list[str]) -> Model | None:
    """A model, converting each version on its own so errors name the version's number."""
    if not isinstance(raw, dict) or not isinstance(raw.get("versions"), dict):
        problems.append(f"{where}: expected a mapping with `versions` (number: version)")
        return None
    versions: dict[int, Version] = {}
    for number, raw_version in raw["versions"].items():
        try:
            n = int(number)
        except (TypeError, ValueError):
            problems.append(f"{where}.versions.{number}: version numbers are whole numbers")
            continue
        version = _convert(raw_version, Version, f"{where}.versions.{n}", problems)
        if version is not None:
            versions[n] = version
    model = _convert({**raw, "versions": {}}, Model, where, problems)
    return None if model is None else msgspec.structs.replace(model, versions=versions)


def _remote_problems(d: Deployment) -> list[str]:
    settings = d.gateway
    if settings.workers_listen is None:
        return []
    where = "gateway.workers_listen"
    if not settings.workers_listen.startswith("tcp://"):
        return [f"{where}: expected tcp://HOST:PORT"]
    curve = settings.workers_curve
    if curve is None:
        return ["gateway.workers_curve: remote workers over TCP must use CURVE keys: give "
                "`authorized_keys` and `secret_key_file` or `secret_key_env`"]
    problems = []
    if (curve.secret_key_file is None) == (curve.secret_key_env is None):
        problems.append("gateway.workers_curve: give exactly one of `secret_key_file` or "
                        "`secret_key_env`")
    elif curve.secret_key_file is not None and not (d.base_dir / curve.secret_key_file).is_file():
        problems.append(f"gateway.workers_curve.secret_key_file: {curve.secret_key_file} "
                        "does not exist")
    elif curve.secret_key_env is not None and not secret_env(curve.secret_key_env):
        problems.append(f"gateway.workers_curve.secret_key_env: environment variable "
                        f"{curve.secret_key_env} is not set")
    if not (d.base_dir / curve.authorized_keys).is_dir():
        problems.append(f"gateway.workers_curve.authorized_keys: {curve.authorized_keys} is "
                        "not a directory")
    for key, models in curve.key_models.items():
        unknown = [m for m in models if m not in d.models]
        if unknown:
            problems.append(f"gateway.workers_curve.key_models.{key}: no model named "
                            f"{', '.join(unknown)}")
    return problems


def _token_problems(name: str, token: TokenRef) -> list[str]:
    where = f"tokens.{name}"
    given = [k for k in ("sha256", "sha256_env", "env") if getattr(token, k) is not None]
    if len(given) != 1:
        return [f"{where}: give exactly one of `sha256` (hex SHA-256 of the token), "
                "`sha256_env` (a variable holding that hash) or `env` (a variable holding "
                "the token)"]
    if token.sha256_env is not None and not secret_env(token.sha256_env):
        return [f"{where}.sha256_env: environment variable {token.sha256_env} is not set"]
    digest = token.digest_hex()
    if digest is not None and not SHA256.match(digest):
        field = "sha256" if token.sha256 is not None else f"sha256_env ({token.sha256_env})"
        return [f"{where}.{field}: expected 64 lowercase hex characters "
                "(`modelgate token new NAME` prints one)"]
    if token.env is not None and not secret_env(token.env):
        return [f"{where}.env: environment variable {token.env} is not set"]
    return []


def _model_problems(d: Deployment, name: str, model: Model, check_scripts: bool,
                    all_versions: bool = True) -> list[str]:
    """``all_versions`` False: some version was invalid and is missing from ``model``, so
    checks of the set of versions (one published, the promoted one exists) would mislead."""
    where = f"models.{name}"
    problems = []
    if not NAME.match(name):
        problems.append(f"{where}: a model name may hold letters, digits, '.', '_' and '-'")
    for token in model.access.tokens:
        if token not in d.tokens:
            problems.append(f"{where}.access.tokens: token `{token}` is not defined under tokens")
    published = [n for n, v in model.versions.items() if not v.unpublished]
    if not published and all_versions and not model.unpublished:
        problems.append(f"{where}.versions: at least one version must be published")
    if model.routing == "advanced":
        if model.promoted is None:
            problems.append(f"{where}.promoted: advanced routing needs a promoted version")
        elif model.promoted not in model.versions:
            if all_versions:
                problems.append(f"{where}.promoted: version {model.promoted} does not exist")
        elif model.versions[model.promoted].unpublished:
            problems.append(f"{where}.promoted: version {model.promoted} is unpublished; "
                            "promote another version before unpublishing it")
    for n, version in model.versions.items():
        problems.extend(_version_problems(d, f"{where}.versions.{n}", n, version, check_scripts))
        if not version.unpublished and check_scripts:
            problems.extend(_project_problems(d, f"{where}.versions.{n}", model, version))
    return problems


def _project_problems(d: Deployment, where: str, model: Model, v: Version) -> list[str]:
    """The script must lie in the project (the snapshot holds nothing else)."""
    if v.project is None and model.project is None:
        return []
    project, script = d.project_path(model, v), d.script_path(v)
    field = "project" if v.project is not None else "script"
    if not project.is_dir() and v.snapshot is None:
        return [f"{where}.project: the project directory {project} does not exist"]
    if not script.is_relative_to(project):
        return [f"{where}.{field}: the script {script} is not inside the project {project}; "
                "a version runs its script from the project's snapshot"]
    return []


def _environment_problems(where: str, v: Version) -> list[str]:
    env = v.environment
    if env is None:
        return []
    if v.language == "python" and env.r_libs:
        return [f"{where}.environment.r_libs: only R versions have R libraries; a Python "
                "version names `requirements`"]
    if v.language == "r" and env.requirements is not None:
        return [f"{where}.environment.requirements: an R version names `r_libs` (library "
                "directories in its project), not Python requirements"]
    paths = [env.requirements] if env.requirements is not None else list(env.r_libs)
    if any(p.startswith("/") or ".." in Path(p).parts for p in paths):
        return [f"{where}.environment: paths are relative to the project and stay inside it "
                "(the snapshot holds them)"]
    return []


def _version_problems(d: Deployment, where: str, n: int, v: Version,
                      check_scripts: bool) -> list[str]:
    problems = []
    if n < 1:
        problems.append(f"{where}: version numbers start at 1")
    if not 0 <= v.workers <= 256:
        problems.append(f"{where}.workers: expected 0 to 256, got {v.workers}")
    elif v.workers == 0 and d.gateway.workers_listen is None:
        problems.append(f"{where}.workers: 0 local workers means remote workers only, which "
                        "needs gateway.workers_listen")
    if not 1 <= v.slots <= 64:
        problems.append(f"{where}.slots: expected 1 to 64, got {v.slots}")
    if v.batch is not None and not (1 <= v.batch.max_size <= 4096 and v.batch.max_wait_ms >= 0):
        problems.append(f"{where}.batch: max_size must be 1 to 4096 and max_wait_ms >= 0")
    if v.timeout_s is not None and v.timeout_s <= 0:
        problems.append(f"{where}.timeout_s: must be positive")
    if v.async_timeout_s is not None and v.async_timeout_s <= 0:
        problems.append(f"{where}.async_timeout_s: must be positive")
    if v.snapshot is not None and not SNAPSHOT.match(v.snapshot):
        problems.append(f"{where}.snapshot: expected sha256: and 64 lowercase hex characters "
                        "(`modelgate publish` records it)")
    problems.extend(_environment_problems(where, v))
    if v.tensors == "numpy" and (v.language != "python" or v.batch is not None):
        problems.append(f"{where}.tensors: numpy is for Python versions without batch")
    if not check_scripts or v.unpublished or v.snapshot is not None:
        return problems  # a snapshot's script is checked in the snapshot (gateway.snapshots)
    script = d.script_path(v)
    try:
        exists = script.is_file()  # raises too, for a directory on the way it may not search
        problem = function_problem(script, v) if exists else None
    except OSError as exc:  # the workers could not read it either
        problems.append(f"{where}.script: cannot read {script}: {exc.strerror}; the gateway's "
                        "user must be able to read it")
        return problems
    if not exists:
        problems.append(f"{where}.script: {v.script} does not exist (looked in {script})")
    elif problem:
        problems.append(f"{where}.function: {problem}")
    return problems


def function_problem(script: Path, v: Version) -> str | None:
    """A static look at the script (nothing is run): is the function defined at top level?"""
    text = script.read_text(encoding="utf-8", errors="replace")
    missing = f"{v.function} is not defined at the top level of {v.script}"
    if v.language == "r":
        name = re.escape(v.function)
        found = re.search(rf"(?m)^\s*`?{name}`?\s*(<-|=|<<-)\s*function\b", text)
        return None if found else missing
    try:
        tree = ast.parse(text, filename=str(script))
    except SyntaxError as exc:
        return f"{v.script} has a syntax error at line {exc.lineno}: {exc.msg}"
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == v.function:
            return None
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id == v.function for t in targets):
            return None
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                (a.asname or a.name.split(".")[0]) == v.function for a in node.names):
            return None
    return missing
