"""``modelgate run --publish MODEL -c CONFIG [--promote] -- COMMAND …``: publish from a
training run.

The command runs in the model's project directory (the directory its versions snapshot), its
output streaming through. Only when it exits 0 is the project published as the next version,
exactly as ``modelgate publish`` does (the script and function of the latest published
version unless given; edit, audit, reload, wait for the gateway's report). Otherwise nothing is
published, and ``run`` exits with the command's code.

``--promote`` (advanced routing only, checked before the command runs) then calls the new
version once with ``--check-body`` and promotes it only when that answers 200; otherwise
production stays where it was, and ``run`` says why and exits 1.

With ``--api URL`` the project goes to that gateway's HTTP publishing API as a tar.gz (an
admin token in MODELGATE_TOKEN), and the promotion too: the config file is only read (to find
the project, script and function), as from a Kubernetes CronJob that mounts the ConfigMap.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import msgspec

from gateway import edits
from gateway.api import ActionResult
from gateway.cli import control
from gateway.config import ConfigError, Deployment, Model, Version, load
from gateway.projects import ProjectError, project_files

CHECK_TIMEOUT_S = 60.0


def run(model: str, config: str, command: list[str], *, promote: bool, check_body: str | None,
        script: str | None, function: str | None, url: str | None, wait: float,
        api: str | None = None) -> int:
    """``api``: publish through that gateway's HTTP API (the config file is only read)."""
    if not command:
        print("modelgate run: give the training command after `--`: "
              "modelgate run --publish MODEL -c CONFIG -- python train.py", file=sys.stderr)
        return 2
    try:
        deployment = load(config, check_scripts=False, check_secrets=False)
    except ConfigError as exc:
        print(f"modelgate run: {exc}", file=sys.stderr)
        return 1
    found = deployment.models.get(model)
    if found is None:
        print(f"modelgate run: no model named `{model}` in {config} (models: "
              f"{', '.join(deployment.models) or 'none'})", file=sys.stderr)
        return 1
    if promote and found.routing != "advanced":
        print(f"modelgate run: --promote needs `routing: advanced` on `{model}` (under basic "
              "routing the new version takes production traffic as soon as it is published, "
              "with no check call first)", file=sys.stderr)
        return 1
    latest = _latest(found)
    if promote and check_body is None:
        if found.example is None:
            print(f"modelgate run: --promote needs --check-body JSON (a request the new "
                  f"version must answer with 200), or an `example` on `{model}`",
                  file=sys.stderr)
            return 1
        check_body = json.dumps(found.example)
    if latest is None and (script is None or function is None):
        print(f"modelgate run: `{model}` has no published version to take the script and "
              "function from; give --script and --function", file=sys.stderr)
        return 1
    project = _project(deployment, found, latest)
    print(f"modelgate run: running {' '.join(command)} in {project}", flush=True)
    try:
        code = subprocess.run(command, cwd=project).returncode
    except OSError as exc:
        print(f"modelgate run: cannot run {command[0]}: {exc.strerror}; nothing was "
              "published", file=sys.stderr)
        return 127
    if code != 0:
        print(f"modelgate run: the command exited with code {code}; nothing was published",
              file=sys.stderr)
        return code
    if api is not None:
        status, version, before = _publish_through_api(api, deployment, model, found, latest,
                                                       project, script, function)
    else:
        status, version, before = _publish_by_editing(config, model, latest, script, function,
                                                      url, wait)
    if status != 0 or version is None or not promote:
        return status
    problem = _check(deployment, model, version, check_body or "", api or url)
    if problem is not None:
        print(f"modelgate run: v{version} is published but not promoted: {problem}; "
              f"production stays v{before}", file=sys.stderr)
        return 1
    print(f"modelgate run: the check call of v{version} answered 200")
    if api is None:
        return control.run_action("run", config, url, wait,
                                  lambda _: edits.promote(model, version))
    try:
        answer = msgspec.json.decode(control.admin_call(
            api, f"/admin/models/{model}/promote", msgspec.json.encode({"version": version})),
            type=ActionResult)
    except control.ApiError as exc:
        print(f"modelgate run: v{version} was not promoted: {exc}", file=sys.stderr)
        return 1
    print(f"modelgate run: {answer.message}")
    return 0


def _publish_by_editing(config: str, model: str, latest: Version | None, script: str | None,
                        function: str | None, url: str | None,
                        wait: float) -> tuple[int, int | None, int | None]:
    """As ``modelgate publish``: edit, audit, reload. (status, new version, production before)"""
    config_dir = Path(config).resolve().parent
    # as typed here, or as the config file says (relative to it)
    typed = str(Path(script).resolve()) if script and Path(script).exists() else script
    status, change = control.act(
        "run", config, url, wait,
        lambda _: edits.publish(model, script=typed or (latest.script if latest else ""),
                                function=function or (latest.function if latest else ""),
                                config_path=config, cwd=config_dir,
                                project=latest.project if latest else None))
    if change is None:
        return status, None, None
    return status, change.version, change.before


def _publish_through_api(api: str, deployment: Deployment, model: str, found: Model,
                         latest: Version | None, project: Path, script: str | None,
                         function: str | None) -> tuple[int, int | None, int | None]:
    """The project as a tar.gz to the gateway's publishing API (the config is only read)."""
    if script is not None:
        script_path = Path(script).resolve()
    else:
        assert latest is not None
        script_path = deployment.script_path(latest)
    if not script_path.is_relative_to(project):
        print(f"modelgate run: the script {script_path} is not in the project {project}",
              file=sys.stderr)
        return 1, None, None
    query = urllib.parse.urlencode({
        "script": script_path.relative_to(project).as_posix(),
        "function": function or (latest.function if latest else "")})
    try:
        body = _archive(project)
        answer = msgspec.json.decode(control.admin_call(
            api, f"/admin/models/{model}/versions?{query}", body, "application/gzip"),
            type=ActionResult)
    except (ProjectError, control.ApiError) as exc:
        print(f"modelgate run: nothing was published: {exc}", file=sys.stderr)
        return 1, None, None
    print(f"modelgate run: {answer.message} (model_version {answer.model_version})")
    return 0, answer.version, answer.production_before


def _archive(project: Path) -> bytes:
    """What a snapshot of ``project`` holds (its .modelgateignore applies), as a tar.gz."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for rel, source, _, _ in project_files(project):
            tar.add(source, arcname=rel, recursive=False)
    return out.getvalue()


def _latest(model: Model) -> Version | None:
    published = [n for n, v in model.versions.items() if not v.unpublished]
    return model.versions[max(published)] if published else None


def _project(deployment: Deployment, model: Model, latest: Version | None) -> Path:
    if latest is not None:
        return deployment.project_path(model, latest)
    return (deployment.base_dir / (model.project or ".")).resolve()


def _check(deployment: Deployment, model: str, n: int, body: str, url: str | None) -> str | None:
    """Why the check call of version ``n`` did not answer 200 (None: it did)."""
    base = url or f"http://{deployment.gateway.listen}"
    headers = {"Content-Type": "application/json"}
    token = os.environ.get("MODELGATE_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"{base.rstrip('/')}/models/{model}/{n}/model",
                                     data=body.encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=CHECK_TIMEOUT_S) as response:
            response.read()
            return None
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:500]
        return f"the check call answered {exc.code}: {detail}"
    except (urllib.error.URLError, OSError) as exc:
        return f"the check call could not reach the gateway at {base}: {exc}"
