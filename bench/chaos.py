"""``python -m bench.chaos``: throughput and failures while workers are killed.

wrk drives the `sum` model (configs/basics.yaml, 2 workers) at c=64 for 30 s while one worker
is SIGKILLed every 2 s; then a clean run after recovery. A killed worker's calls in flight fail
with 502 (nothing else may fail), and after recovery nothing fails.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
import time

import msgspec

from bench import report, wrk
from bench.contenders import Contender, descendants, running

BODY = msgspec.json.encode({"parameters": [1, 2, 3]})


def workers_of(gateway_pid: int) -> list[int]:
    """The worker processes: the pool parents' children."""
    pools = [p for p in descendants(gateway_pid) if _parent(p) == gateway_pid]
    return [w for pool in pools for w in descendants(pool)]


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1


def main() -> int:
    wrk.require_wrk()
    seconds = float(os.environ.get("BENCH_SECONDS", "30"))
    contender = Contender("modelgate", "modelgate", "/models/sum/latest/model",
                          "configs/basics.yaml")
    kills: list[int] = []
    with running(contender, BODY) as (url, pid):
        def killer(stop: threading.Event) -> None:
            while not stop.wait(2.0):
                candidates = workers_of(pid)
                if candidates:
                    victim = random.choice(candidates)
                    try:
                        os.kill(victim, signal.SIGKILL)
                        kills.append(victim)
                    except ProcessLookupError:
                        pass

        print(f"chaos: c=64 for {seconds:g} s, a worker killed every 2 s", file=sys.stderr)
        chaos = wrk.run_while(url, BODY, 64, seconds, killer)
        time.sleep(3)  # the pools restart their workers
        print("after recovery: c=64 for 10 s", file=sys.stderr)
        calm = wrk.run(url, BODY, 64, 10)
    total = chaos.rps * seconds
    lines = ["| run | requests/s | p50 ms | p99 ms | failed calls | failed share |",
             "|---|---:|---:|---:|---:|---:|",
             f"| {len(kills)} workers killed in {seconds:g} s | {chaos.rps:,.0f} | "
             f"{chaos.p50_ms:.2f} | {chaos.p99_ms:.2f} | {chaos.errors} | "
             f"{chaos.errors / max(total, 1):.4%} |",
             f"| after recovery | {calm.rps:,.0f} | {calm.p50_ms:.2f} | {calm.p99_ms:.2f} | "
             f"{calm.errors} | {calm.errors / max(calm.rps * 10, 1):.4%} |",
             "", f"- failed calls per killed worker: {chaos.errors / max(len(kills), 1):.1f} "
             "(a worker holds up to 32 calls of this cheap function)"]
    print("\n".join(lines))
    path = report.write("chaos", "Killing workers under load (sum model, c=64)",
                        "python -m bench.chaos", lines)
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
