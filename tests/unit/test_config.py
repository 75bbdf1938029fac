"""Config validation (SPEC §2): every error names the file, the dotted path in the document
(``models.m.versions.2.script``) and what is wrong; ``modelgate check`` exits 0 or 1."""

import os
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import EXAMPLES, ROOT, as_unprivileged, open_to_workers, world_readable_dir
from gateway.config import ConfigError, load, parse

SCRIPT = str(EXAMPLES / "basics" / "basics.py")
SHA = "a" * 64
FILE = "/srv/modelgate/prod.yaml"
UNSET = "MODELGATE_TEST_SURELY_UNSET_VARIABLE"


def config(**overrides):
    """Two valid versions of model ``m``; ``overrides`` set dotted paths (digits: int keys)."""
    doc = {"models": {"m": {"access": {"public": True}, "versions": {
        1: {"language": "python", "script": SCRIPT, "function": "add"},
        2: {"language": "python", "script": SCRIPT, "function": "add"}}}}}
    for path, value in overrides.items():
        node = doc
        *parents, last = path.split(".")
        for key in parents:
            node = node.setdefault(int(key) if key.isdigit() else key, {})
        node[int(last) if last.isdigit() else last] = value
    return doc


def problems(doc, path=FILE):
    with pytest.raises(ConfigError) as error:
        parse(doc, path)
    assert error.value.path == path
    return error.value


@pytest.fixture(autouse=True)
def no_such_variable(monkeypatch):
    monkeypatch.delenv(UNSET, raising=False)


def test_a_valid_file_loads_with_every_contract_field(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELGATE_TEST_TOKEN_CI", "some-token")
    file = tmp_path / "deployment.yaml"
    file.write_text(f"""
gateway:
  listen: 127.0.0.1:9000
  request_timeout_s: 12
  max_body_bytes: 2048
  audit_log: audit.jsonl
tokens:
  ci-bot: {{sha256: "{SHA}"}}
  from-env: {{env: MODELGATE_TEST_TOKEN_CI}}
  ops: {{sha256: "{'b' * 64}", admin: true}}
models:
  wine-quality:
    description: Red wine
    access: {{public: false, tokens: [ci-bot, ops]}}
    routing: advanced
    promoted: 1
    env: {{THRESHOLD: "0.5"}}
    versions:
      1: {{language: python, script: {SCRIPT}, function: add, workers: 2}}
      2: {{language: python, script: {SCRIPT}, function: add, timeout_s: 5,
          preload: false}}
      3: {{language: python, script: {SCRIPT}, function: add, unpublished: true}}
""")
    deployment = load(file)
    assert deployment.path == str(file)
    assert (deployment.gateway.listen, deployment.gateway.request_timeout_s,
            deployment.gateway.max_body_bytes) == ("127.0.0.1:9000", 12.0, 2048)
    assert deployment.tokens["ops"].admin and not deployment.tokens["ci-bot"].admin
    assert deployment.tokens["from-env"].env == "MODELGATE_TEST_TOKEN_CI"
    model = deployment.models["wine-quality"]
    assert (model.routing, model.promoted, model.env) == ("advanced", 1, {"THRESHOLD": "0.5"})
    assert model.access.tokens == ["ci-bot", "ops"] and not model.access.public
    assert sorted(model.versions) == [1, 2, 3]
    assert (model.versions[1].workers, model.versions[1].preload) == (2, True)
    assert (model.versions[2].timeout_s, model.versions[2].preload) == (5.0, False)
    assert model.versions[3].unpublished


def test_defaults_live_on_the_structs():
    deployment = parse(config(), FILE)
    assert deployment.gateway.listen == "127.0.0.1:8000"
    assert deployment.gateway.max_body_bytes == 10 * 1024 * 1024
    version = deployment.models["m"].versions[1]
    assert (version.workers, version.preload, version.timeout_s) == (1, True, None)
    assert deployment.models["m"].routing == "basic"


@pytest.mark.parametrize("override, where, what", [
    # wrong type, at every depth
    ({"models.m.versions.2.workers": "two"}, "models.m.versions.2.workers",
     "Expected `int`, got `str`"),
    ({"models.m.access.public": "yes"}, "models.m.access.public", "Expected `bool`, got `str`"),
    ({"models.m.versions.2.batch": {"max_size": "x"}}, "models.m.versions.2.batch.max_size",
     "Expected `int`, got `str`"),
    ({"gateway": {"max_body_bytes": "big"}}, "gateway.max_body_bytes",
     "Expected `int`, got `str`"),
    ({"models.m.versions.2.language": "julia"}, "models.m.versions.2.language",
     "Invalid enum value 'julia'"),
    ({"tokens": ["ci-bot"]}, "tokens", "expected a mapping of token names"),
    ({"models.m.versions.2": "predict.py"}, "models.m.versions.2", "Expected `object`"),
    # unknown fields
    ({"models.m.versions.2.colour": "red"}, "models.m.versions.2",
     "Object contains unknown field `colour`"),
    ({"models.m.colour": "red"}, "models.m", "Object contains unknown field `colour`"),
    ({"gateway": {"port": 80}}, "gateway", "Object contains unknown field `port`"),
    ({"gateway": {"busy_poll_us": -1}}, "gateway.busy_poll_us", "must be 0 (never) to 10000"),
    ({"gateway": {"busy_poll_us": 20000}}, "gateway.busy_poll_us", "must be 0 (never) to 10000"),
    ({"tokens": {"t": {"sha256": SHA, "salt": "x"}}}, "tokens.t",
     "Object contains unknown field `salt`"),
    # scripts and functions
    ({"models.m.versions.2.script": "missing.py"}, "models.m.versions.2.script",
     "missing.py does not exist"),
    ({"models.m.versions.2.function": "nope"}, "models.m.versions.2.function",
     "nope is not defined at the top level of"),
    # tokens
    ({"models.m.access": {"tokens": ["ghost"]}}, "models.m.access.tokens",
     "token `ghost` is not defined under tokens"),
    ({"tokens": {"t": {"sha256": "xyz"}}}, "tokens.t.sha256", "expected 64 lowercase hex"),
    ({"tokens": {"t": {"sha256": "a" * 63}}}, "tokens.t.sha256", "expected 64 lowercase hex"),
    ({"tokens": {"t": {"sha256": "g" * 64}}}, "tokens.t.sha256", "expected 64 lowercase hex"),
    ({"tokens": {"t": {"env": UNSET}}}, "tokens.t.env",
     f"environment variable {UNSET} is not set"),
    ({"tokens": {"t": {"sha256": SHA, "env": "X"}}}, "tokens.t", "give exactly one of"),
    ({"tokens": {"t": {}}}, "tokens.t", "give exactly one of"),
    # routing and publication
    ({"models.m.routing": "advanced"}, "models.m.promoted",
     "advanced routing needs a promoted version"),
    ({"models.m.routing": "advanced", "models.m.promoted": 3}, "models.m.promoted",
     "version 3 does not exist"),
    ({"models.m.routing": "advanced", "models.m.promoted": 1,
      "models.m.versions.1.unpublished": True}, "models.m.promoted",
     "version 1 is unpublished"),
    ({"models.m.versions.1.unpublished": True, "models.m.versions.2.unpublished": True},
     "models.m.versions", "at least one version must be published"),
    ({"models.m.versions.0": {"language": "python", "script": SCRIPT, "function": "add"}},
     "models.m.versions.0", "version numbers start at 1"),
    ({"models.m.versions.x": {}}, "models.m.versions.x", "version numbers are whole numbers"),
    ({"models.m.versions.2.workers": 300}, "models.m.versions.2.workers",
     "expected 0 to 256, got 300"),
    ({"models": {}}, "models", "at least one model is required"),
])
def test_each_problem_names_the_file_the_path_and_what_is_wrong(override, where, what):
    error = problems(config(**override))
    assert f"{FILE}: {where}: {what}" in str(error), str(error)


def test_a_wrong_type_is_the_only_problem_reported():
    """A version that does not convert is reported once, not again as 'no published version'
    or 'the promoted version does not exist'."""
    doc = config(**{"models.m.routing": "advanced", "models.m.promoted": 2,
                    "models.m.versions.2.workers": "two"})
    del doc["models"]["m"]["versions"][1]
    assert problems(doc).problems == [
        "models.m.versions.2.workers: Expected `int`, got `str`"]


def test_a_bad_model_name_is_refused():
    doc = config()
    doc["models"]["bad name!"] = doc["models"].pop("m")
    assert f"{FILE}: models.bad name!: a model name may hold" in str(problems(doc))


def test_a_syntax_error_in_the_script_is_reported_with_its_line(tmp_path):
    script = tmp_path / "broken.py"
    script.write_text("import os\n\ndef add(:\n    return 1\n")
    error = str(problems(config(**{"models.m.versions.2.script": str(script)})))
    assert f"{FILE}: models.m.versions.2.function: {script} has a syntax error at line 3" in error


def test_a_function_bound_by_assignment_or_import_counts_as_defined(tmp_path):
    script = tmp_path / "bound.py"
    script.write_text("from math import sqrt\npredict = sqrt\n")
    for function in ("sqrt", "predict"):
        parse(config(**{"models.m.versions.2.script": str(script),
                        "models.m.versions.2.function": function}), FILE)
    script.write_text("if True:\n    def predict(x):\n        return x\n")
    assert "predict is not defined at the top level" in str(problems(config(
        **{"models.m.versions.2.script": str(script), "models.m.versions.2.function": "predict"})))


def test_a_script_the_gateway_cannot_read_is_a_problem_not_a_crash():
    """A real unreadable file, read by a user it is unreadable to (root reads any file: the
    check runs as ``nobody`` then), in a directory that user may enter."""
    directory = world_readable_dir("modelgate-unreadable-")
    try:
        script = directory / "private.py"
        script.write_text("def add(a, b):\n    return a + b\n")
        script.chmod(0)
        doc = config(**{"models.m.versions.1.script": str(script)})

        def check_as_unprivileged_user():
            assert not os.access(script, os.R_OK) and os.access(SCRIPT, os.R_OK)
            assert problems(doc).problems == [
                f"models.m.versions.1.script: cannot read {script}: Permission denied; the "
                "gateway's user must be able to read it"]

        as_unprivileged(check_as_unprivileged_user)
    finally:
        shutil.rmtree(directory)


def test_an_env_token_is_valid_once_its_variable_is_set(monkeypatch):
    doc = config(**{"tokens": {"t": {"env": UNSET}}, "models.m.access": {"tokens": ["t"]}})
    assert "tokens.t.env" in str(problems(doc))
    monkeypatch.setenv(UNSET, "a-token")
    assert parse(doc, FILE).tokens["t"].env == UNSET


def test_unpublished_versions_are_not_checked_for_their_script():
    parse(config(**{"models.m.versions.2.script": "gone.py",
                    "models.m.versions.2.unpublished": True}), FILE)


def test_every_problem_is_reported_at_once():
    error = problems(config(**{"models.m.versions.1.workers": "x",
                               "models.m.versions.2.function": "nope",
                               "tokens": {"t": {"sha256": "bad"}}}))
    assert len(error.problems) == 3
    assert all(line.startswith(f"{FILE}: ") for line in str(error).splitlines())


def test_relative_script_paths_resolve_beside_the_config_file(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "model.py").write_text("def predict(x):\n    return x\n")
    monkeypatch.chdir(tmp_path)  # not the config's directory
    file = tmp_path / "conf" / "deployment.yaml"
    file.write_text(yaml.safe_dump(config(**{"models.m.versions.2.script": "model.py",
                                             "models.m.versions.2.function": "predict"})))
    deployment = load(file)
    version = deployment.models["m"].versions[2]
    assert deployment.script_path(version) == tmp_path / "conf" / "model.py"
    file.write_text(yaml.safe_dump(config(**{"models.m.versions.2.script": "other.py"})))
    with pytest.raises(ConfigError) as error:
        load(file)
    assert (f"{file}: models.m.versions.2.script: other.py does not exist "
            f"(looked in {tmp_path / 'conf' / 'other.py'})") in str(error.value)


def test_unreadable_or_invalid_yaml_files_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"absent\.yaml: cannot read the file"):
        load(tmp_path / "absent.yaml")
    file = tmp_path / "bad.yaml"
    file.write_text("models: [unclosed")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        load(file)
    file.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: the document must be a mapping"):
        load(file)


def check(file, *options):
    env = {k: v for k, v in os.environ.items() if k != UNSET}
    return subprocess.run([sys.executable, "-m", "gateway.cli", "check", str(file), *options],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)


def test_modelgate_check_exits_0_on_a_valid_file(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(config()))
    ok = check(good)
    assert (ok.returncode, ok.stderr) == (0, "")
    assert f"{good}: OK (1 models, 2 versions, every script loaded)" in ok.stdout


@pytest.mark.parametrize("override, words", [
    ({"models.m.versions.2.function": "nope"}, "models.m.versions.2.function: nope is not"),
    ({"models.m.versions.2.workers": "two"}, "models.m.versions.2.workers: Expected `int`"),
    ({"tokens": {"t": {"env": UNSET}}}, f"tokens.t.env: environment variable {UNSET}"),
    ({"tokens": "not a mapping"}, "tokens: expected a mapping"),
])
def test_modelgate_check_exits_1_with_the_errors_on_stderr(tmp_path, override, words):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config(**override)))
    refused = check(bad)
    assert refused.returncode == 1
    assert f"{bad}: {words}" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert refused.stdout == ""


def test_modelgate_check_runs_each_script_unless_told_not_to(tmp_path):
    open_to_workers(tmp_path)  # as root, scripts are loaded as nobody
    raising = tmp_path / "raising.py"
    raising.write_text("import not_a_module_anywhere\n\ndef add():\n    pass\n")
    failing = tmp_path / "fail.yaml"
    failing.write_text(yaml.safe_dump(config(**{"models.m.versions.2.script": str(raising)})))
    not_loading = check(failing)
    assert not_loading.returncode == 1
    assert "No module named 'not_a_module_anywhere'" in not_loading.stderr
    assert str(raising) in not_loading.stderr and str(failing) in not_loading.stderr
    static_only = check(failing, "--no-load")
    assert static_only.returncode == 0, static_only.stderr


def test_the_shipped_configs_are_valid():
    for name in ("demo.yaml", "basics.yaml"):
        load(ROOT / "configs" / name)
