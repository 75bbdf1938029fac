"""Runs wrk against one URL and reads the summary line that ``post.lua`` prints."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import msgspec

LUA = Path(__file__).resolve().parent / "post.lua"
LINE = re.compile(r"BENCH requests=(\d+) duration_us=(\d+) p50_us=(\d+) p99_us=(\d+) "
                  r"errors=(\d+) non2xx=(\d+)")


class Measurement(msgspec.Struct, frozen=True):
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors and non-2xx responses


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is not installed: `sudo apt-get install -y wrk` "
                         "(or `make bench`, which installs it)")
    return path


def run(url: str, body: bytes, concurrency: int, seconds: float, token: str = "") -> Measurement:
    threads = 1 if concurrency < 16 else 2
    with tempfile.NamedTemporaryFile(suffix=".json") as body_file:
        body_file.write(body)
        body_file.flush()
        out = subprocess.run(
            [require_wrk(), f"-t{threads}", f"-c{concurrency}", f"-d{seconds:g}s",
             "--timeout", "10s", "-s", str(LUA), url],
            capture_output=True, text=True, timeout=seconds + 60,
            env={**os.environ, "BENCH_BODY_FILE": body_file.name, "BENCH_TOKEN": token})
    match = LINE.search(out.stdout)
    if match is None:
        raise RuntimeError(f"wrk gave no summary:\n{out.stdout}\n{out.stderr}")
    requests, duration_us, p50, p99, errors, non2xx = map(int, match.groups())
    return Measurement(rps=requests / (duration_us / 1e6), p50_ms=p50 / 1000, p99_ms=p99 / 1000,
                       errors=errors + non2xx)
