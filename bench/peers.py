"""BentoML and LitServe as contenders serving the same wine pickle, each from its own venv.

Each lives in a virtualenv under ``bench/.venvs/`` (created on demand with uv, never a
dependency of modelgate), pinned here to the versions measured; scikit-learn and NumPy are
pinned to ours, so that all contenders run the same forest with the same code. The services
themselves are ``bench/servers/*.py``, run inside those venvs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENVS = BENCH / ".venvs"
MODEL = ROOT / "examples" / "wine" / "results" / "classifier.pkl"
PINS = {
    "bentoml": ["bentoml==1.4.40"],
    "litserve": ["litserve==0.2.19", "pyzmq"],
}


def _uv() -> str:
    """uv from modelgate's own venv (it is in the lock), else from PATH."""
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.exists() else shutil.which("uv")
    if found is None:
        raise RuntimeError("uv is needed to create the contenders' venvs (make setup installs it)")
    return found


def python(peer: str) -> Path:
    """The Python of ``peer``'s venv, creating it the first time."""
    venv = VENVS / peer
    executable = venv / "bin" / "python"
    if not executable.exists():
        import numpy
        import sklearn

        print(f"installing {peer} into {venv} (once)", file=sys.stderr, flush=True)
        subprocess.run([_uv(), "venv", "--quiet", "--python", sys.executable, str(venv)],
                       check=True)
        subprocess.run([_uv(), "pip", "install", "--quiet", "--python", str(executable),
                        *PINS[peer], "joblib", f"scikit-learn=={sklearn.__version__}",
                        f"numpy=={numpy.__version__}"], check=True)
    return executable


def command(peer: str, port: int, batched: bool) -> tuple[list[str], dict[str, str]]:
    """The command line starting ``peer`` on ``port`` of 127.0.0.1, and its extra environment."""
    env = {"WINE_MODEL": str(MODEL)}
    if peer == "bentoml":
        env.update(WINE_BATCHED="1" if batched else "0", BENTOML_DO_NOT_TRACK="True")
        bentoml = python(peer).parent / "bentoml"
        return [str(bentoml), "serve", "bench.servers.bentoml_wine:Wine", "--host", "127.0.0.1",
                "--port", str(port)], env
    if peer == "litserve":
        script = BENCH / "servers" / "litserve_wine.py"
        return [str(python(peer)), str(script), str(port), *(["batched"] if batched else [])], env
    raise ValueError(f"unknown peer {peer}")
