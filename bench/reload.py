"""``python -m bench.reload``: throughput and failures while the promoted version is switched.

wrk drives ``labels/prod`` of a cheap model (the `sum` function, two versions of two workers
each, advanced routing) at c=64 for 30 s (``BENCH_SECONDS``) while ``modelgate promote``
switches production between the versions 10 times, each a real CLI run: edit the file, SIGHUP,
wait for the gateway's reload in the audit log. Hot reload promises zero failed calls. Then a
run without switches (10 s) for comparison.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgspec

from bench import report, wrk
from bench.contenders import ROOT, WORK, Contender, running

BODY = msgspec.json.encode({"parameters": [1, 2, 3]})
SWITCHES = 10
SCRIPT = ROOT / "examples" / "basics" / "basics.py"
CONFIG = f"""\
# bench.reload: production is switched between the two versions while wrk runs
gateway:
  audit_log: reload-audit.jsonl
models:
  sum:
    access: {{public: true}}
    routing: advanced
    promoted: 1
    versions:
      1: {{language: python, script: {SCRIPT}, function: add, workers: 2}}
      2: {{language: python, script: {SCRIPT}, function: add, workers: 2}}
"""


class Switch(msgspec.Struct, frozen=True):
    to: int
    exit_code: int
    seconds: float  # from the CLI's start to the gateway's reload seen in the audit log


def write_config() -> Path:
    WORK.mkdir(exist_ok=True)
    path = WORK / "reload.yaml"
    path.write_text(CONFIG)
    (WORK / "reload-audit.jsonl").unlink(missing_ok=True)
    return path


def promote(config: Path, version: int) -> Switch:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "promote", "sum", str(version),
                           "-c", str(config), "--wait", "30"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    if done.returncode != 0:
        print(f"promote {version} failed: {done.stderr.strip()}", file=sys.stderr)
    return Switch(version, done.returncode, time.perf_counter() - started)


def switch_during(config: Path, seconds: float, switches: list[Switch],
                  stop: threading.Event) -> None:
    """``SWITCHES`` promotions spread over the run (2, 1, 2, ...), leaving its edges alone."""
    start, interval = time.monotonic(), seconds / (SWITCHES + 1)
    for n in range(SWITCHES):
        if stop.wait(max(0.0, start + (n + 1) * interval - time.monotonic())):
            return
        switches.append(promote(config, 2 if n % 2 == 0 else 1))


def row(label: str, m: wrk.Measurement, switches: str) -> str:
    return (f"| {label} | {m.rps:,.0f} | {m.p50_ms:.2f} | {m.p99_ms:.2f} | {m.non2xx} | "
            f"{m.socket_errors} | {switches} |")


def main() -> int:
    wrk.require_wrk()
    seconds = float(os.environ.get("BENCH_SECONDS", "30"))
    config = write_config()
    contender = Contender("modelgate", "modelgate", "/models/sum/labels/prod/model", str(config),
                          config_as_is=True)  # promoted while served
    switches: list[Switch] = []
    with running(contender, BODY) as (url, _):
        print(f"reload: c=64 for {seconds:g} s, production switched {SWITCHES} times",
              file=sys.stderr)
        measured = wrk.run_while(url, BODY, 64, seconds,
                                 lambda stop: switch_during(config, seconds, switches, stop))
        calm_seconds = min(10.0, seconds)
        print(f"without switches: c=64 for {calm_seconds:g} s", file=sys.stderr)
        calm = wrk.run(url, BODY, 64, calm_seconds)
    ok = [s for s in switches if s.exit_code == 0]
    lines = ["| run | requests/s | p50 ms | p99 ms | non-2xx | socket errors | switches |",
             "|---|---:|---:|---:|---:|---:|---:|",
             row(f"{len(ok)} promotions in {seconds:g} s", measured,
                 f"{len(ok)} of {len(switches)}"),
             row(f"no promotion, {calm_seconds:g} s", calm, "0"),
             ""]
    if ok:
        times = sorted(s.seconds * 1000 for s in ok)
        lines.append(f"- one switch (`modelgate promote`: edit, SIGHUP, reload seen in the "
                     f"audit log): median {statistics.median(times):.0f} ms, "
                     f"max {times[-1]:.0f} ms")
    lines.append(f"- failed calls during {len(ok)} switches: {measured.errors} (goal: 0)")
    print("\n".join(lines))
    command = "python -m bench.reload"
    if "BENCH_SECONDS" in os.environ:
        command = f"BENCH_SECONDS={seconds:g} {command}"
    path = report.write("reload", "Switching the promoted version under load (sum model, "
                        "c=64)", command, lines)
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
