"""Config validation: every error names the file, the path in the document and the problem."""

import subprocess
import sys

import pytest
import yaml

from conftest import EXAMPLES, TEST_MODELS
from gateway.config import ConfigError, load, parse

SCRIPT = str(EXAMPLES / "basics" / "basics.py")
SHA = "a" * 64


def config(**overrides):
    doc = {"models": {"m": {"access": {"public": True}, "versions": {
        1: {"language": "python", "script": SCRIPT, "function": "add"}}}}}
    for path, value in overrides.items():
        node = doc
        *parents, last = path.split(".")
        for key in parents:
            node = node.setdefault(int(key) if key.isdigit() else key, {})
        node[int(last) if last.isdigit() else last] = value
    return doc


def problems(doc, path="deploy.yaml"):
    with pytest.raises(ConfigError) as error:
        parse(doc, path)
    return str(error.value)


def test_a_valid_config_loads_with_defaults(tmp_path):
    file = tmp_path / "ok.yaml"
    file.write_text(yaml.safe_dump(config()))
    deployment = load(file)
    assert deployment.gateway.listen == "127.0.0.1:8000"
    assert deployment.models["m"].versions[1].workers == 1


@pytest.mark.parametrize("override, expected", [
    ({"models.m.versions.1.workers": "two"},
     "deploy.yaml: models.m.versions.1.workers: Expected `int`, got `str`"),
    ({"models.m.versions.1.colour": "red"},
     "models.m.versions.1: Object contains unknown field `colour`"),
    ({"models.m.versions.1.script": "missing.py"}, "models.m.versions.1.script: missing.py"),
    ({"models.m.versions.1.function": "nope"},
     "models.m.versions.1.function: nope is not defined"),
    ({"models.m.access": {"tokens": ["ghost"]}},
     "models.m.access.tokens: token `ghost` is not defined"),
    ({"tokens": {"t": {"sha256": "xyz"}}}, "tokens.t.sha256: expected 64 lowercase hex"),
    ({"tokens": {"t": {"env": "MODELGATE_TEST_UNSET_VAR"}}},
     "tokens.t.env: environment variable MODELGATE_TEST_UNSET_VAR is not set"),
    ({"tokens": {"t": {"sha256": SHA, "env": "X"}}}, "tokens.t: give exactly one of"),
    ({"models.m.routing": "advanced"}, "models.m.promoted: advanced routing needs"),
    ({"models.m.routing": "advanced", "models.m.promoted": 3},
     "models.m.promoted: version 3 does not exist"),
    ({"models.m.versions.1.unpublished": True},
     "models.m.versions: at least one version must be published"),
    ({"models.m.versions.1.language": "julia"},
     "models.m.versions.1.language: Invalid enum value 'julia'"),
    ({"models.m.versions.x": {}}, "models.m.versions.x: version numbers are whole numbers"),
    ({"gateway": {"listen": 8000}}, "gateway.listen: Expected `str`, got `int`"),
    ({"surprise": 1}, "unknown section(s) surprise"),
])
def test_each_problem_names_where_and_what(override, expected):
    assert expected in problems(config(**override))


def test_unpublishing_the_promoted_version_is_refused():
    doc = config(**{"models.m.routing": "advanced", "models.m.promoted": 1,
                    "models.m.versions.2": {"language": "python", "script": SCRIPT,
                                            "function": "add"},
                    "models.m.versions.1.unpublished": True})
    assert "models.m.promoted: version 1 is unpublished" in problems(doc)


def test_a_bad_model_name_is_refused():
    doc = config()
    doc["models"]["bad name!"] = doc["models"].pop("m")
    assert "models.bad name!: a model name may hold" in problems(doc)


def test_a_syntax_error_in_the_script_is_reported(tmp_path):
    script = tmp_path / "broken.py"
    script.write_text("def add(:\n")
    assert "has a syntax error at line 1" in problems(config(
        **{"models.m.versions.1.script": str(script)}))


def test_every_problem_is_reported_at_once():
    text = problems(config(**{"models.m.versions.1.workers": "x",
                              "tokens": {"t": {"sha256": "bad"}}}))
    assert "workers" in text and "tokens.t.sha256" in text


def test_unreadable_or_invalid_yaml_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the file"):
        load(tmp_path / "absent.yaml")
    file = tmp_path / "bad.yaml"
    file.write_text("models: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(file)


def test_modelgate_check_exit_codes(tmp_path):
    good, bad, failing = tmp_path / "good.yaml", tmp_path / "bad.yaml", tmp_path / "fail.yaml"
    good.write_text(yaml.safe_dump(config()))
    bad.write_text(yaml.safe_dump(config(**{"models.m.versions.1.function": "nope"})))
    raising = tmp_path / "raising.py"
    raising.write_text("import not_a_module_anywhere\ndef add(): pass\n")
    failing.write_text(yaml.safe_dump(config(**{"models.m.versions.1.script": str(raising)})))

    def check(file):
        return subprocess.run([sys.executable, "-m", "gateway.cli", "check", str(file)],
                              capture_output=True, text=True, timeout=60)

    ok = check(good)
    assert ok.returncode == 0 and "OK" in ok.stdout
    refused = check(bad)
    assert refused.returncode == 1 and "nope is not defined" in refused.stderr
    not_loading = check(failing)
    assert not_loading.returncode == 1
    assert "No module named 'not_a_module_anywhere'" in not_loading.stderr
    assert str(raising) in not_loading.stderr


def test_the_demo_and_example_configs_are_valid():
    root = TEST_MODELS.parent.parent
    for name in ("demo.yaml", "basics.yaml"):
        load(root / "configs" / name)
