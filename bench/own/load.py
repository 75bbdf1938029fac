"""One measurement window: wrk with ``load.lua`` for a number of seconds, and its figures.

``load.lua`` prints, at the end of a run, the answers by HTTP status, wrk's socket errors, and
the latency quantile function on a fine grid (every 0.5 %, every 0.1 % from 98.6 %). Windows
are merged exactly in requests and statuses, and in latency through their quantile functions
(a mixture weighted by answers), so the percentiles of several windows are those of all their
calls, to the grid's resolution.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.contenders import exit_with_parent
from bench.own.gateway_view import GatewayDelta, add
from bench.wrk import require_wrk, threads_for

LUA = Path(__file__).resolve().parent / "load.lua"
SUMMARY = re.compile(r"^BENCH requests=(\d+) duration_us=(\d+) connect=(\d+) read=(\d+) "
                     r"write=(\d+) timeout=(\d+) mean_us=([\d.]+) max_us=(\d+)$", re.M)
STATUS = re.compile(r"^BENCH_STATUS(.*)$", re.M)
QUANTILES = re.compile(r"^BENCH_QUANTILES (.*)$", re.M)
SOCKET_ERRORS = ("connect", "read", "write", "timeout")


@dataclass
class Window:
    """What one or several merged windows measured."""

    seconds: float
    answers: int  # responses of any status
    statuses: dict[int, int]
    socket_errors: dict[str, int]  # connect, read, write, timeout (wrk's counts), when > 0
    mean_ms: float
    max_ms: float
    quantiles: list[tuple[float, float]]  # (percent, ms), ascending
    gateway: GatewayDelta | None = None
    windows: int = 1
    per_window_rps: list[float] = field(default_factory=list)
    per_window_p50: list[float] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def rps(self) -> float:
        """Answers of status 2xx per second (errors are counted apart)."""
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    @property
    def errors(self) -> dict[str, int]:
        """Errors by kind: each non-2xx status, and wrk's socket errors (timeouts...)."""
        found = {str(s): n for s, n in sorted(self.statuses.items()) if not 200 <= s < 300}
        return {**found, **self.socket_errors}

    def percentile(self, p: float) -> float:
        """Latency in ms under which ``p`` percent of the answers came (max for 100)."""
        for percent, ms in self.quantiles:
            if percent >= p - 1e-9:
                return ms
        return self.max_ms

    @property
    def p50_ms(self) -> float:
        return self.percentile(50)

    @property
    def p90_ms(self) -> float:
        return self.percentile(90)

    @property
    def p99_ms(self) -> float:
        return self.percentile(99)


def parse(output: str, seconds_asked: float) -> Window:
    summary = SUMMARY.search(output)
    if summary is None:
        raise RuntimeError(f"wrk gave no summary:\n{output}")
    answers, duration_us, *errors = (int(x) for x in summary.groups()[:6])
    mean_us, max_us = float(summary.group(7)), int(summary.group(8))
    statuses: dict[int, int] = {}
    found = STATUS.search(output)
    for part in (found.group(1).split() if found else []):
        status, _, n = part.partition("=")
        statuses[int(status)] = int(n)
    quantiles: list[tuple[float, float]] = []
    found = QUANTILES.search(output)
    for part in (found.group(1).split() if found else []):
        percent, _, us = part.partition(":")
        quantiles.append((float(percent), int(us) / 1000))
    seconds = duration_us / 1e6 if duration_us else seconds_asked
    window = Window(seconds=seconds, answers=answers, statuses=statuses,
                    socket_errors={k: n for k, n in zip(SOCKET_ERRORS, errors) if n},
                    mean_ms=mean_us / 1000, max_ms=max_us / 1000, quantiles=quantiles)
    window.per_window_rps = [window.rps]
    window.per_window_p50 = [window.p50_ms]
    return window


def measure(url: str, body_file: Path, token: str, connections: int, seconds: int,
            rate: float | None = None, timeout_s: int = 10) -> Window:
    """POST the body to ``url`` over ``connections`` keep-alive connections for ``seconds``
    (each connection waits for its answer before the next call), optionally paced to hold
    ``rate`` requests/s in all. wrk is stopped past ``seconds`` + 30 s whatever happens."""
    threads = min(threads_for(connections), connections)
    env = {**os.environ, "BENCH_BODY_FILE": str(body_file), "BENCH_TOKEN": token,
           "BENCH_RATE": f"{rate / threads:.6f}" if rate else ""}
    command = [require_wrk(), f"-t{threads}", f"-c{connections}", f"-d{seconds}s",
               "--timeout", f"{timeout_s}s", "-s", str(LUA), url]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30,
                             env=env, preexec_fn=lambda: exit_with_parent(signal.SIGKILL))
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"wrk did not finish a {seconds} s window within {seconds + 30} s"
                           ) from None
    if SUMMARY.search(out.stdout) is None:
        raise RuntimeError(f"wrk failed (exit {out.returncode}): "
                           f"{(out.stderr or out.stdout).strip()}")
    window = parse(out.stdout, seconds)
    if rate is None and window.answers:
        # Each connection waits for its answer before the next call, so the mean time per
        # call is connections x seconds / answers (Little's law). wrk's own mean is not used:
        # it counts the calls a stalled connection would have sent (its correction for
        # coordinated omission, which its percentiles keep).
        window.mean_ms = connections * window.seconds / window.answers * 1000
    return window


def merge(windows: list[Window]) -> Window:
    """Several windows as one: their calls together (see the module's docstring)."""
    answers = sum(w.answers for w in windows)
    statuses: Counter[int] = Counter()
    socket_errors: Counter[str] = Counter()
    for w in windows:
        statuses.update(w.statuses)
        socket_errors.update(w.socket_errors)
    mean = (sum(w.mean_ms * w.answers for w in windows) / answers) if answers else 0.0
    merged = Window(seconds=sum(w.seconds for w in windows), answers=answers,
                    statuses=dict(statuses), socket_errors=dict(socket_errors), mean_ms=mean,
                    max_ms=max((w.max_ms for w in windows), default=0.0),
                    quantiles=_mixture(windows), windows=len(windows),
                    per_window_rps=[r for w in windows for r in w.per_window_rps],
                    per_window_p50=[p for w in windows for p in w.per_window_p50])
    merged.gateway = add([w.gateway for w in windows])
    return merged


def _mixture(windows: list[Window]) -> list[tuple[float, float]]:
    """The quantile function of all the windows' answers: each window's grid point is an atom
    holding its share of that window's answers; the atoms sorted by latency give the merged
    distribution, read back at the same grid."""
    atoms: list[tuple[float, float]] = []  # (ms, answers)
    for w in windows:
        previous = 0.0
        for percent, ms in w.quantiles:
            atoms.append((ms, (percent - previous) / 100 * w.answers))
            previous = percent
        atoms.append((w.max_ms, (100 - previous) / 100 * w.answers))
    total = sum(n for _, n in atoms)
    grid = next(([p for p, _ in w.quantiles] for w in windows if w.quantiles), [])
    if total <= 0 or not grid:
        return []
    atoms.sort()
    out, seen, k = [], 0.0, 0
    for percent in grid:
        want = percent / 100 * total - 1e-9
        while k < len(atoms) - 1 and seen + atoms[k][1] < want:
            seen += atoms[k][1]
            k += 1
        out.append((percent, atoms[k][0]))
    return out
