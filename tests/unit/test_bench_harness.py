"""The harness's own promises: bench.ab's base really runs the base's code (a contender served
from another checkout imports that checkout's gateway, not this tree's: ``python -m`` puts the
working directory before PYTHONPATH, which made every A/B compare this tree with itself), and a
report never overwrites an earlier one of the same day."""

import os
import subprocess
import sys

from bench import report
from bench.contenders import ROOT, WORK, Contender, _command, launch_directory


def test_a_contender_from_another_checkout_imports_that_checkouts_gateway():
    checkout = WORK / "test-checkout"
    cli = checkout / "gateway" / "cli"
    cli.mkdir(parents=True, exist_ok=True)
    (checkout / "gateway" / "__init__.py").write_text("")
    (cli / "__init__.py").write_text("")
    (cli / "__main__.py").write_text("import gateway\nprint(gateway.__file__)\n")
    contender = Contender(name="base", kind="modelgate", path="/", config="configs/basics.yaml",
                          source=str(checkout.relative_to(ROOT)))
    argv, env = _command(contender, 1)
    assert argv[:3] == [sys.executable, "-m", "gateway.cli"]
    ran = subprocess.run(argv[:3], cwd=launch_directory(contender), env={**os.environ, **env},
                         capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == str(checkout / "gateway" / "__init__.py")
    assert launch_directory(Contender(name="tree", kind="modelgate", path="/")) == ROOT


def test_a_second_report_of_the_day_gets_its_own_name(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    monkeypatch.setattr(report, "_stems", {})
    first = report.write("wakeups", "first", "cmd", ["one"])
    assert first.name == f"{report._STARTED[0].date().isoformat()}-wakeups.md"
    monkeypatch.setattr(report, "_stems", {})  # a later run
    second = report.write("wakeups", "second", "cmd", ["two"])
    assert second != first and second.name.startswith(first.stem + "-")
    assert "one" in first.read_text() and "two" in second.read_text()
    assert report.stem("wakeups") == second.stem  # its plot, beside it
