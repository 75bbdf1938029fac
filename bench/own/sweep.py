"""Measurement windows at each load level until throughput is stable, as perf_analyzer does.

At a level (a number of connections, or a request rate held over a number of connections),
windows of ``window`` seconds follow one another until the last three agree within
``tolerance`` (their spread, (max - min) / mean, of requests/s; at a held rate, of p50 latency
too), or until ``max_windows`` windows: then the level is reported as unstable, with its last
three windows. With two versions (an A/B), the windows alternate A B B A A B ..., so drift of a
shared machine hits both alike, and the level ends when both are stable.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.own import gateway_view, load
from bench.own.load import Window
from bench.own.target import Target, Version

STABLE_WINDOWS = 3


@dataclass(frozen=True)
class Settings:
    levels: list[int]  # connection counts, or requests/s with ``rate``
    rate: bool  # levels are request rates held over ``connections``
    connections: int
    window: int  # seconds
    max_windows: int
    tolerance: float  # a fraction: 0.1 for 10 %
    timeout: int  # seconds a request may take before wrk counts a timeout


@dataclass
class Outcome:
    """One version at one level: its last windows merged, and whether they agreed."""

    level: int
    version: Version
    result: Window
    stable: bool
    windows: int  # measured in all at this level
    spread: float  # of requests/s (and p50 at a held rate) over the windows reported


def spread(values: list[float]) -> float:
    mean = sum(values) / len(values) if values else 0.0
    return (max(values) - min(values)) / mean if mean > 0 else 0.0


def is_stable(windows: list[Window], settings: Settings) -> bool:
    if len(windows) < STABLE_WINDOWS:
        return False
    last = windows[-STABLE_WINDOWS:]
    if spread([w.rps for w in last]) > settings.tolerance:
        return False
    return not settings.rate or spread([w.p50_ms for w in last]) <= settings.tolerance


def progress(text: str) -> None:
    """One line that updates in place on a terminal, a line per step otherwise."""
    tty = sys.stderr.isatty()
    print(f"\r\033[K{text}" if tty else text, end="" if tty else "\n", file=sys.stderr,
          flush=True)


def describe(level: int, settings: Settings) -> str:
    return f"{level}/s over {settings.connections} connections" if settings.rate \
        else f"c={level}"


def measure_level(target: Target, level: int, settings: Settings, body_file: Path,
                  step: str, report: Callable[[str], None] = progress) -> list[Outcome]:
    """Windows at one level, alternating between the target's versions."""
    versions = target.versions
    windows: dict[int, list[Window]] = {v.number: [] for v in versions}
    connections = settings.connections if settings.rate else level
    rate = float(level) if settings.rate else None
    for k in range(settings.max_windows):
        order = versions if k % 2 == 0 else versions[::-1]  # A B, B A, A B ...
        for version in order:
            before = gateway_view.scrape(target.base, target.token, target.model)
            window = load.measure(version.url, body_file, target.token, connections,
                                  settings.window, rate, settings.timeout)
            after = gateway_view.scrape(target.base, target.token, target.model)
            window.gateway = gateway_view.diff(before, after, version.number)
            windows[version.number].append(window)
            done = windows[version.number]
            agree = (f", last {STABLE_WINDOWS} within {spread([w.rps for w in done[-3:]]):.0%}"
                     if len(done) >= STABLE_WINDOWS else "")
            errors = sum(window.errors.values())
            report(f"{step} {describe(level, settings)} {version.title}: window {len(done)}"
                   f"/{settings.max_windows}: {window.rps:,.0f} requests/s, p50 "
                   f"{window.p50_ms:.2f} ms, p99 {window.p99_ms:.2f} ms, {errors} errors"
                   f"{agree}")
        if all(is_stable(windows[v.number], settings) for v in versions):
            break
    outcomes = []
    for version in versions:
        measured = windows[version.number]
        last = measured[-STABLE_WINDOWS:]
        agreement = spread([w.rps for w in last])
        if settings.rate:
            agreement = max(agreement, spread([w.p50_ms for w in last]))
        outcomes.append(Outcome(level, version, load.merge(last),
                                is_stable(measured, settings), len(measured), agreement))
    return outcomes


def run(target: Target, settings: Settings, report: Callable[[str], None] = progress,
        into: list[Outcome] | None = None) -> list[Outcome]:
    """Every level in turn; outcomes are appended to ``into`` as levels end (so an interrupted
    run still has the levels done)."""
    outcomes = [] if into is None else into
    with tempfile.TemporaryDirectory(prefix="modelgate-bench-") as tmp:
        body_file = Path(tmp) / "body.json"
        body_file.write_bytes(target.body)
        for i, level in enumerate(settings.levels):
            outcomes += measure_level(target, level, settings, body_file,
                                      f"[{i + 1}/{len(settings.levels)}]", report)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    return outcomes
