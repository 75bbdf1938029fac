"""``python -m bench.wakeups``: the thread wake-ups and CPU time one call costs, per thread.

The `sum` model through modelgate (2 workers) and the bare ceiling, each at c=1 with wrk for
``--duration`` seconds; every thread of the server's process tree is read from /proc before and
after: voluntary context switches (a thread that blocked and was woken again: one wake-up) and
CPU time, each divided by the calls answered. The hop's added p50 over the ceiling, divided by
the extra wake-ups, is what one wake-up costs on this machine at this load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import msgspec

from bench import report, wrk
from bench.contenders import Contender, descendants, running

PATH = "/models/sum/latest/model"
TICK = os.sysconf("SC_CLK_TCK")


def threads(pids: list[int]) -> dict[tuple[int, int, str], tuple[float, int]]:
    """(pid, tid, name) -> (CPU seconds, voluntary context switches)."""
    found = {}
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except FileNotFoundError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    stat = f.read()
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    status = dict(line.split(":\t", 1) for line in f.read().splitlines()
                                  if ":\t" in line)
            except FileNotFoundError:
                continue
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            found[(pid, int(tid), name)] = ((int(fields[11]) + int(fields[12])) / TICK,
                                            int(status["voluntary_ctxt_switches"]))
    return found


def role(key: tuple[int, int, str], server: int) -> str:
    pid, tid, name = key
    where = "server" if pid == server else f"child {pid}"
    kind = "ZeroMQ I/O thread" if name.startswith("ZMQbg/IO") else (
        "main thread" if pid == tid else f"thread {name}")
    return f"{where}: {kind}"


def measure(contender: Contender, body: bytes, seconds: float) -> tuple[wrk.Measurement,
                                                                        list[str], float]:
    with running(contender, body) as (url, pid):
        wrk.run(url, body, 1, 2.0)
        pids = [pid, *descendants(pid)]
        before = threads(pids)
        m = wrk.run(url, body, 1, seconds)
        after = threads(pids)
    calls = m.rps * seconds
    rows, total = [], 0.0
    for key in sorted(after):
        if key not in before:
            continue
        cpu = after[key][0] - before[key][0]
        wakes = (after[key][1] - before[key][1]) / calls
        if wakes < 0.05 and cpu < 0.01:
            continue  # idle threads (heartbeats, the supervisor)
        total += wakes
        rows.append(f"| {contender.name} | {role(key, pid)} | {wakes:.2f} | "
                    f"{cpu / calls * 1e6:.0f} |")
    return m, rows, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.wakeups", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    body = msgspec.json.encode({"parameters": [1, 2, 3]})
    contenders = [Contender(name="modelgate", kind="modelgate", config="configs/basics.yaml",
                            path=PATH), Contender(name="ceiling", kind="ceiling", path=PATH)]
    p50: dict[str, list[float]] = {}
    woken: dict[str, list[float]] = {}
    tables: list[str] = []
    for k in range(args.repeat):
        for contender in contenders[k % 2:] + contenders[:k % 2]:
            m, rows, total = measure(contender, body, args.duration)
            p50.setdefault(contender.name, []).append(m.p50_ms)
            woken.setdefault(contender.name, []).append(total)
            if k == args.repeat - 1:
                tables += rows
            print(f"{contender.name}: p50 {m.p50_ms:.3f} ms, {total:.2f} wake-ups per call",
                  file=sys.stderr)
    ours, ceiling = (statistics.median(p50[n]) for n in ("modelgate", "ceiling"))
    extra = statistics.median(woken["modelgate"]) - statistics.median(woken["ceiling"])
    lines = ["| server | thread | wake-ups per call | CPU µs per call |", "|---|---|---:|---:|",
             *tables, "",
             f"- c=1 p50 (median of {args.repeat}): modelgate {ours:.3f} ms, ceiling "
             f"{ceiling:.3f} ms: the hop adds **{ours - ceiling:+.3f} ms**",
             f"- wake-ups per call (median): modelgate {statistics.median(woken['modelgate']):.2f}"
             f", ceiling {statistics.median(woken['ceiling']):.2f}: **{extra:.2f} more**, "
             f"i.e. ~{1000 * (ours - ceiling) / max(extra, 0.01):.0f} µs of added p50 per extra "
             "wake-up (wrk's own wake-ups are not counted)",
             f"- the machine: load average {os.getloadavg()[0]:.2f} at the end "
             f"({time.strftime('%H:%M')} UTC)"]
    print("\n".join(lines))
    path = report.write("wakeups", "Thread wake-ups per call at c=1 (sum, 2 workers)",
                        "python -m bench.wakeups " + " ".join(argv or sys.argv[1:]), lines)
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
