"""Runs wrk against one URL and reads the summary line that ``post.lua`` prints.

The Lua ``done()`` hook prints requests, duration, p50/p99 and the error counts as one
``BENCH ...`` line, so nothing depends on the layout of wrk's own human-readable report.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import msgspec

from bench.contenders import exit_with_parent

LUA = Path(__file__).resolve().parent / "post.lua"
LINE = re.compile(r"BENCH requests=(\d+) duration_us=(\d+) p50_us=(\d+) p99_us=(\d+) "
                  r"errors=(\d+) non2xx=(\d+)")
INSTALL = "apt-get install -y wrk"


class Measurement(msgspec.Struct, frozen=True):
    rps: float
    p50_ms: float
    p99_ms: float
    socket_errors: int = 0  # connect, read, write and timeout errors
    non2xx: int = 0  # answers with a status outside 200-299

    @property
    def errors(self) -> int:
        return self.socket_errors + self.non2xx


def require_wrk() -> str:
    """wrk's path; without it, the command that installs it, and exit status 2."""
    path = shutil.which("wrk")
    if path is None:
        sudo = "sudo " if os.geteuid() != 0 else ""
        print(f"wrk is not installed; install it with:\n  {sudo}{INSTALL}\n"
              "(`make bench` installs it too)", file=sys.stderr)
        raise SystemExit(2)
    return path


def threads_for(concurrency: int) -> int:
    """One wrk thread up to 16 connections, two above (the machine has few cores)."""
    return 1 if concurrency <= 16 else 2


def run(url: str, body: bytes, concurrency: int, seconds: float, token: str = "",
        headers: dict[str, str] | None = None) -> Measurement:
    """POST ``body`` to ``url`` over ``concurrency`` keep-alive connections for ``seconds``
    (with ``headers`` besides Content-Type and the token's)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as body_file:
        body_file.write(body)
        body_file.flush()
        out = subprocess.run(
            [require_wrk(), f"-t{threads_for(concurrency)}", f"-c{concurrency}",
             f"-d{seconds:g}s", "--latency", "--timeout", "10s", "-s", str(LUA), url],
            capture_output=True, text=True, timeout=seconds + 60,
            env={**os.environ, "BENCH_BODY_FILE": body_file.name, "BENCH_TOKEN": token,
                 "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in (headers or {}).items())},
            preexec_fn=lambda: exit_with_parent(signal.SIGKILL))
    match = LINE.search(out.stdout)
    if match is None:
        raise RuntimeError(f"wrk gave no summary (exit {out.returncode}):\n"
                           f"{out.stdout}\n{out.stderr}")
    requests, duration_us, p50, p99, socket_errors, non2xx = map(int, match.groups())
    return Measurement(rps=requests / (duration_us / 1e6), p50_ms=p50 / 1000, p99_ms=p99 / 1000,
                       socket_errors=socket_errors, non2xx=non2xx)


def run_while(url: str, body: bytes, concurrency: int, seconds: float,
              disturb: Callable[[threading.Event], None]) -> Measurement:
    """:func:`run`, while ``disturb`` runs in a thread (killing workers, switching versions);
    it is handed an event that is set when the measurement ends, and should return then."""
    stop = threading.Event()
    thread = threading.Thread(target=disturb, args=(stop,))
    thread.start()
    try:
        return run(url, body, concurrency, seconds)
    finally:
        stop.set()
        thread.join()
