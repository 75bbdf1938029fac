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
          baselines: list[str]) -> list[str]:
    """One row per concurrency and contender; a ratio of requests/s to each baseline, and the
    p50 latency added over the first baseline."""
    ratios = "".join(f" ratio to {b} |" for b in baselines)
    rows = [f"| concurrency | contender | requests/s | p50 ms | p99 ms | errors |{ratios} "
            f"added p50 ms |",
            "|---:|---|---:|---:|---:|---:|" + "---:|" * (len(baselines) + 1)]
    for concurrency in sorted({c for c, _ in results}):
        for name in contenders:
            m = results.get((concurrency, name))
            if m is None:
                continue
            cells = []
            for baseline in baselines:
                base = results.get((concurrency, baseline))
                cells.append(f"{m.rps / base.rps:.2f}" if base else "-")
            first = results.get((concurrency, baselines[0]))
            added = f"{m.p50_ms - first.p50_ms:+.3f}" if first else "-"
            rows.append(f"| {concurrency} | {name} | {m.rps:,.0f} | {m.p50_ms:.3f} | "
                        f"{m.p99_ms:.3f} | {m.errors} | {' | '.join(cells)} | {added} |")
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


def plot(name: str, title: str, results: dict[tuple[int, str], Measurement],
         contenders: list[str]) -> Path | None:
    """Throughput and p99 latency against concurrency, one line per contender (a PNG beside
    the markdown report); None when matplotlib is not installed (`make bench` installs it)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    levels = sorted({c for c, _ in results})
    figure, (rps_axis, p99_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    for contender in contenders:
        points = [(c, results[(c, contender)]) for c in levels if (c, contender) in results]
        xs = [c for c, _ in points]
        rps_axis.plot(xs, [m.rps for _, m in points], marker="o", label=contender)
        p99_axis.plot(xs, [m.p99_ms for _, m in points], marker="o", label=contender)
    for axis, label in ((rps_axis, "requests/s"), (p99_axis, "p99 latency (ms)")):
        axis.set_xscale("log", base=2)
        axis.set_xticks(levels, [str(c) for c in levels])
        axis.set_xlabel("concurrent connections")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    p99_axis.set_yscale("log")
    rps_axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{datetime.date.today().isoformat()}-{name}.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
