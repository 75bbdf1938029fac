"""The layers of ``gateway/`` and ``workers/`` are a contract (``[tool.importlinter]`` in
pyproject.toml): leaves, then serving, then web, then cli; workers apart from the gateway but
for the wire protocol; no import cycles. The test fails, naming the offending import, when a
change breaks it."""

import subprocess
import sys
from pathlib import Path

from conftest import ROOT, require

require("importlinter", "MODELGATE_TEST_SKIP_LINT")  # the dev extra, which `make test` installs


def test_the_import_contract_is_kept():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
