"""The container and Kubernetes files stay correct without a Docker engine or a cluster:
hadolint lints the Dockerfile, kubernetes-validate checks the manifests against the API
schemas, and the config inside the ConfigMap is checked by modelgate's own loader."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gateway.config import parse

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            pytest.fail(f"{name} is not installed; `make test` installs it with the test extra")
        return found
    return str(path)


def test_dockerfile_passes_hadolint():
    result = subprocess.run([tool("hadolint"), "--config", str(ROOT / ".hadolint.yaml"),
                             str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each instruction, continuation lines joined, comments out."""
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [(keyword.upper(), rest.strip()) for keyword, _, rest in
            (line.strip().partition(" ") for line in joined.splitlines() if line.strip())]


def test_dockerfile_runs_as_non_root_with_a_healthcheck_on_healthz():
    text = (ROOT / "Dockerfile").read_text()
    assert "\nUSER 10001\n" in text
    healthchecks = [args for keyword, args in dockerfile_instructions(text)
                    if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1, healthchecks  # only the last one would count
    options, command, probe = healthchecks[0].partition("CMD ")
    assert command, f"the HEALTHCHECK runs no command: {healthchecks[0]}"
    assert "NONE" not in options.split()
    assert re.search(r"http://(127\.0\.0\.1|localhost):8000/healthz\b", probe), probe
    assert 'CMD ["modelgate", "serve", "/etc/modelgate/config.yaml"' in text


def test_kubernetes_manifests_validate_against_the_api_schemas():
    manifests = sorted(str(p) for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    result = subprocess.run([tool("kubernetes-validate"), "--strict", *manifests],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") >= 5


def test_the_configmap_holds_a_valid_deployment_config(monkeypatch):
    configmap = yaml.safe_load((K8S / "configmap.yaml").read_text())
    secret = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    for name, value in secret["stringData"].items():
        monkeypatch.setenv(name, value)
    raw = yaml.safe_load(configmap["data"]["config.yaml"])
    deployment = parse(raw, "/etc/modelgate/config.yaml", check_scripts=False)
    assert deployment.gateway.listen == "0.0.0.0:8000"
    assert set(deployment.tokens) == {"ci-bot", "ops"}


def test_the_gateway_deployment_probes_and_drains():
    docs = list(yaml.safe_load_all((K8S / "gateway.yaml").read_text()))
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "preStop" in container["lifecycle"]
    assert pod["terminationGracePeriodSeconds"] > 20  # > gateway.drain_timeout_s


def test_the_training_cronjob_runs_a_valid_modelgate_run_for_a_model_of_the_configmap():
    from gateway.cli.main import build_parser

    job = yaml.safe_load((K8S / "training-cronjob.yaml").read_text())
    container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["modelgate", "run"]
    args = build_parser().parse_args(container["args"][1:])
    configmap = yaml.safe_load((K8S / "configmap.yaml").read_text())
    models = yaml.safe_load(configmap["data"]["config.yaml"])["models"]
    assert args.publish in models and args.api and args.promote
    assert args.training[0] == "--" and len(args.training) > 1
    yaml.safe_load(args.check_body)  # JSON
