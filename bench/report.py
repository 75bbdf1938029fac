"""Tables of a benchmark run: printed, and written as markdown under bench/results/."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
from pathlib import Path

from bench.wrk import Measurement

RESULTS = Path(__file__).resolve().parent / "results"
# when the benchmark command started (this module is imported first thing), and the machine's
# load then: every report says both, so a figure is never read without the load beside it
_STARTED = (datetime.datetime.now(), os.getloadavg())


def median(runs: list[Measurement]) -> Measurement:
    return Measurement(rps=statistics.median(r.rps for r in runs),
                       p50_ms=statistics.median(r.p50_ms for r in runs),
                       p99_ms=statistics.median(r.p99_ms for r in runs),
                       socket_errors=sum(r.socket_errors for r in runs),
                       non2xx=sum(r.non2xx for r in runs))


def table(results: dict[tuple[int, str], Measurement], contenders: list[str],
          baselines: list[str], limits: dict[int, float] | None = None,
          unbatched: list[str] | None = None) -> list[str]:
    """One row per concurrency and contender; a ratio of requests/s to each baseline, and the
    p50 latency added over the first baseline. With ``limits`` (the model-bound requests/s
    per concurrency), the rows of ``unbatched`` contenders show that limit and their ratio
    to it."""
    limits = limits or {}
    ratios = "".join(f" ratio to {b} |" for b in baselines)
    bound = " model-bound limit | ratio to limit |" if limits else ""
    rows = [f"| concurrency | contender | requests/s | p50 ms | p99 ms | errors |{ratios} "
            f"added p50 ms |{bound}",
            "|---:|---|---:|---:|---:|---:|" + "---:|" * (len(baselines) + 1)
            + ("---:|---:|" if limits else "")]
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
            errors = f"{m.errors} ({m.non2xx} non-2xx)" if m.non2xx else str(m.errors)
            limit = ""
            if limits:
                top = limits.get(concurrency)
                limit = (f" {top:,.0f} | {m.rps / top:.2f} |"
                         if top and name in (unbatched or []) else " | |")
            rows.append(f"| {concurrency} | {name} | {m.rps:,.0f} | {m.p50_ms:.3f} | "
                        f"{m.p99_ms:.3f} | {errors} | {' | '.join(cells)} | {added} |{limit}")
    return rows


def limit_note(limits: dict[int, float], bound: object) -> list[str]:
    """How the model-bound limit was measured, and its spread over the run."""
    if not limits or bound is None:
        return []
    workers = getattr(bound, "workers", 0)
    low, high = min(limits.values()), max(limits.values())
    return [f"- model-bound limit: {workers} workers / the in-process predict time (median of "
            f"200 calls of `{getattr(bound, 'function', '')}` in the harness's process, timed "
            f"before each concurrency of each repetition): {low:,.0f} to {high:,.0f} "
            f"requests/s over the run, i.e. {1000 * workers / high:.2f} to "
            f"{1000 * workers / low:.2f} ms per predict; shown beside every unbatched row"]


def summary(results: dict[tuple[int, str], Measurement], contenders: list[str],
            baseline: str) -> list[str]:
    """The two headline figures per contender: its requests/s over the baseline's at the
    highest concurrency, and the p50 latency it adds at the lowest."""
    levels = sorted({c for c, _ in results})
    if not levels:
        return []
    low, high = levels[0], levels[-1]
    lines = []
    for name in contenders:
        if name == baseline:
            continue
        parts = []
        m, base = results.get((high, name)), results.get((high, baseline))
        if m and base:
            parts.append(f"{m.rps / base.rps:.2f} of {baseline}'s requests/s at c={high}")
        m, base = results.get((low, name)), results.get((low, baseline))
        if m and base:
            parts.append(f"{m.p50_ms - base.p50_ms:+.3f} ms p50 over {baseline} at c={low}")
        if parts:
            lines.append(f"- {name}: {'; '.join(parts)}")
    return lines


def machine() -> list[str]:
    """Header lines naming the machine: cores this process may use (as ``nproc`` counts
    them), CPU model, Python and wrk versions."""
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)
    first = (wrk.stdout or wrk.stderr).split("\n")[0]
    version = first.split(" Copyright")[0].removeprefix("wrk ").strip()
    return [f"- machine: nproc {len(os.sched_getaffinity(0))}, {cpu}",
            f"- wrk: {version}; Python {platform.python_version()}"]


def load_lines() -> list[str]:
    """The load average (1, 5 and 15 min) when the command started and now: the benchmark's own
    processes count in it too, so the start is the one that says whether the machine was quiet."""
    started, before = _STARTED
    after = os.getloadavg()
    return [f"- load average (1, 5, 15 min): {before[0]:.2f}, {before[1]:.2f}, {before[2]:.2f} "
            f"at the start ({started.strftime('%H:%M')}); {after[0]:.2f}, {after[1]:.2f}, "
            f"{after[2]:.2f} at the end ({datetime.datetime.now().strftime('%H:%M')})"]


_stems: dict[str, str] = {}


def stem(name: str) -> str:
    """``<date>-<name>``, or ``<date>-<name>-<HHMM>`` (the run's start) when a report of that
    name was already written that day: a run never overwrites an earlier one's figures. The
    same for a run's report and its plot."""
    if name not in _stems:
        plain = f"{_STARTED[0].date().isoformat()}-{name}"
        taken = (RESULTS / f"{plain}.md").exists() or (RESULTS / f"{plain}.png").exists()
        _stems[name] = f"{plain}-{_STARTED[0].strftime('%H%M')}" if taken else plain
    return _stems[name]


def write(name: str, description: str, command: str, lines: list[str]) -> Path:
    """``bench/results/<stem>.md``: a header naming the machine and command, then ``lines``."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{stem(name)}.md"
    text = [f"# {description}", "", *machine(), f"- command: `{command}`",
            f"- run: {datetime.datetime.now().isoformat(timespec='seconds')}", *load_lines(),
            "", *lines, ""]
    path.write_text("\n".join(text))
    return path


def plot(name: str, title: str, results: dict[tuple[int, str], Measurement],
         contenders: list[str], path: Path | None = None,
         xlabel: str = "concurrent connections") -> Path | None:
    """Throughput and p99 latency against concurrency, one line per contender (a PNG beside
    the markdown report, or at ``path``); None when matplotlib is not installed (`make bench`
    installs it)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
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
        axis.set_xlabel(xlabel)
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    p99_axis.set_yscale("log")  # plain numbers on it (0.5, 1, 2, 5 ...), not powers of ten
    p99_axis.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    p99_axis.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    p99_axis.yaxis.set_minor_formatter(NullFormatter())
    rps_axis.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    rps_axis.set_ylim(bottom=0)
    rps_axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    if path is None:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{stem(name)}.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
