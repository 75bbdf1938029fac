"""Seldon MLServer with its scikit-learn runtime, as a contender serving the same pickle.

MLServer lives in its own virtualenv under ``bench/.venvs/`` (created on demand, never a
dependency of modelgate), pinned to the versions measured in the issue; its workers crash with
uvloop >= 0.22 ("no current event loop"), so uvloop is pinned below that there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgspec

BENCH = Path(__file__).resolve().parent
VENV = BENCH / ".venvs" / "mlserver"
WORK = BENCH / ".work"
MODEL = BENCH.parent / "examples" / "wine" / "results" / "classifier.pkl"


def executable() -> Path:
    """The ``mlserver`` command, installing MLServer into its own venv the first time."""
    command = VENV / "bin" / "mlserver"
    if not command.exists():
        import sklearn

        print(f"installing MLServer into {VENV} (once)", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "mlserver==1.7.1",
                        "mlserver-sklearn==1.7.1", "uvloop<0.22", "joblib",
                        f"scikit-learn=={sklearn.__version__}"], check=True)
    return command


def model_repository(port: int, batched: bool, workers: int = 2) -> Path:
    """A directory MLServer can start from: settings, the model's settings and its pickle."""
    directory = WORK / f"mlserver-{'batched' if batched else 'plain'}-{port}"
    model_dir = directory / "wine"
    model_dir.mkdir(parents=True, exist_ok=True)
    settings = {"http_port": port, "grpc_port": port + 1, "metrics_port": port + 2,
                "parallel_workers": workers, "debug": False}
    model: dict[str, object] = {"name": "wine", "implementation": "mlserver_sklearn.SKLearnModel",
             "parameters": {"uri": str(MODEL), "version": "v1"}}
    if batched:
        model.update({"max_batch_size": 32, "max_batch_time": 0.002})
    (directory / "settings.json").write_bytes(msgspec.json.encode(settings))
    (model_dir / "model-settings.json").write_bytes(msgspec.json.encode(model))
    return directory
