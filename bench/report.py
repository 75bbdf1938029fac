"""Tables of a benchmark run: printed, and written as markdown under bench/results/."""

from __future__ import annotations

import datetime
import platform
import statistics
import subprocess
from pathlib import Path

from bench.wrk import Measurement

RESULTS = Path(__file__).resolve().parent / "results"


def median(runs: list[Measurement]) -> Measurement:
    return Measurement(rps=statistics.median(r.rps for r in runs),
                       p50_ms=statistics.median(r.p50_ms for r in runs),
                       p99_ms=statistics.median(r.p99_ms for r in runs),
                       errors=sum(r.errors for r in runs))


def table(results: dict[tuple[int, str], Measurement], contenders: list[str],
          baseline: str) -> list[str]:
    rows = [f"| concurrency | contender | requests/s | p50 ms | p99 ms | errors | "
            f"ratio to {baseline} | added p50 ms |",
            "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for concurrency in sorted({c for c, _ in results}):
        base = results.get((concurrency, baseline))
        for name in contenders:
            m = results.get((concurrency, name))
            if m is None:
                continue
            ratio = f"{m.rps / base.rps:.2f}" if base else "-"
            added = f"{m.p50_ms - base.p50_ms:+.3f}" if base else "-"
            rows.append(f"| {concurrency} | {name} | {m.rps:,.0f} | {m.p50_ms:.3f} | "
                        f"{m.p99_ms:.3f} | {m.errors} | {ratio} | {added} |")
    return rows


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    version = (wrk.stdout or wrk.stderr).split("\n")[0].strip()
    import os

    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {version}"


def write(name: str, description: str, command: str, lines: list[str]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{datetime.date.today().isoformat()}-{name}.md"
    text = [f"# {description}", "", f"- machine: {machine()}", f"- command: `{command}`",
            f"- run: {datetime.datetime.now().isoformat(timespec='seconds')}", "", *lines, ""]
    path.write_text("\n".join(text))
    return path
