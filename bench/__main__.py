"""``python -m bench`` / ``modelgate bench``: run a scenario of bench/scenarios/ and report.

Contenders are started by the harness, warmed up, and measured with wrk at each concurrency,
alternating between contenders (so drift on a shared machine hits all of them alike), repeated
``--repeat`` times; the table shows medians. Benchmarks print figures; they assert nothing.

A scenario is a YAML file of bench/scenarios/ (fields: ``Scenario`` below; contenders:
``bench.contenders.Contender``), so a new comparison is a new file.

With ``--url``, ``-c``, ``--model``, ``--compare`` or ``--rate``, the command measures the user's
own running deployment instead (``bench.own``).
"""

from __future__ import annotations

import argparse
import runpy
import shlex
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import msgspec
import yaml

from bench import report, wrk
from bench.contenders import Contender, descendants, memory_mb, running
from bench.own import cli as own

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
WARM_UP_S = 2.0


class ModelBound(msgspec.Struct, frozen=True):
    """The model-bound limit of unbatched contenders: ``workers`` processes that each do
    nothing but ``function`` of ``script`` (timed in the harness's own process, with the
    scenario's parameters, at every concurrency of every repetition) serve at most
    ``workers / predict time`` calls per second."""

    script: str
    function: str
    workers: int = 2


class Scenario(msgspec.Struct, frozen=True):
    """One file of bench/scenarios/: what is called, by whom, how hard and how long."""

    description: str
    body: object
    contenders: list[Contender]
    concurrency: list[int] = msgspec.field(default_factory=lambda: [1, 16, 64])
    duration: float = 10.0  # seconds per measurement
    baselines: list[str] = msgspec.field(default_factory=list)  # ratios are taken to these
    memory: str = ""  # the contender whose worker memory is reported
    model_bound: ModelBound | None = None


PREDICT_CALLS = 200  # timed in-process calls per estimate of the predict time (after 20 untimed)


def predict_time_s(bound: ModelBound, parameters: list[object]) -> float:
    """The median time of one in-process call of the model, in seconds."""
    function = runpy.run_path(str(Path(__file__).resolve().parent.parent / bound.script))[
        bound.function]
    times = []
    for k in range(20 + PREDICT_CALLS):
        start = time.perf_counter()
        function(*parameters)
        if k >= 20:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def load(name: str) -> Scenario:
    path = SCENARIOS / f"{name}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in SCENARIOS.glob("*.yaml")))
        raise SystemExit(f"no scenario {name}; known: {known}")
    try:
        return msgspec.convert(yaml.safe_load(path.read_text()), Scenario)
    except msgspec.ValidationError as exc:
        raise SystemExit(f"{path}: {exc}") from None


def progress(text: str) -> None:
    """One line that updates in place on a terminal, a line per step otherwise."""
    tty = sys.stderr.isatty()
    print(f"\r\033[K{text}" if tty else text, end="" if tty else "\n", file=sys.stderr,
          flush=True)


def run(scenario: Scenario, concurrencies: list[int], seconds: float, repeat: int,
        sweep: bool = False
        ) -> tuple[dict[tuple[int, str], wrk.Measurement], list[str], dict[int, float]]:
    """Every (concurrency, contender) measured ``repeat`` times, contenders alternating at
    each concurrency; returns the median per pair, notes on worker memory, and the median
    model-bound limit (requests/s) per concurrency when the scenario names one.

    With ``sweep``, each contender is started once per repetition and measured at every
    concurrency in a row (contenders then alternate per repetition, in an order rotated each
    time): for contenders that take many seconds to start."""
    runs: dict[tuple[int, str], list[wrk.Measurement]] = {}
    limits: dict[int, list[float]] = {}
    notes: list[str] = []
    total = len(concurrencies) * len(scenario.contenders) * repeat
    step = 0

    def time_model(concurrency: int) -> None:
        bound = scenario.model_bound
        if bound is not None and isinstance(scenario.body, dict):
            progress(f"timing the model in-process (for c={concurrency})")
            seconds_each = predict_time_s(bound, scenario.body.get("parameters", []))
            limits.setdefault(concurrency, []).append(bound.workers / seconds_each)

    def measure(k: int, contender: Contender, levels: list[int]) -> None:
        nonlocal step, notes
        body = msgspec.json.encode(scenario.body if contender.body is None else contender.body)
        progress(f"{contender.name}, repetition {k + 1}/{repeat}: starting")
        with running(contender, body) as (url, pid):
            for concurrency in levels:
                step += 1
                where = (f"[{step}/{total}] {contender.name} at c={concurrency}, "
                         f"repetition {k + 1}/{repeat}")
                progress(f"{where}: warming up, then measuring {seconds:g} s")
                wrk.run(url, body, concurrency, min(WARM_UP_S, seconds), contender.token)
                m = wrk.run(url, body, concurrency, seconds, contender.token)
                runs.setdefault((concurrency, contender.name), []).append(m)
                if contender.name == scenario.memory and k == 0 and not notes:
                    notes = worker_memory(pid)
                progress(f"{where}: {m.rps:,.0f} requests/s, p50 {m.p50_ms:.3f} ms, "
                         f"{m.errors} errors")

    for k in range(repeat):
        if sweep:
            order = scenario.contenders[k % len(scenario.contenders):] + \
                scenario.contenders[:k % len(scenario.contenders)]
            for contender in order:
                for concurrency in concurrencies:
                    time_model(concurrency)
                measure(k, contender, concurrencies)
            continue
        for concurrency in concurrencies:
            time_model(concurrency)
            for contender in scenario.contenders:
                measure(k, contender, [concurrency])
    if sys.stderr.isatty():
        print(file=sys.stderr)
    return ({key: report.median(value) for key, value in runs.items()}, notes,
            {c: statistics.median(v) for c, v in limits.items()})


def worker_memory(pid: int) -> list[str]:
    rows = []
    for child in descendants(pid):
        try:
            rss, pss = memory_mb(child)
        except OSError:
            continue
        rows.append((rss, pss))
    if not rows:
        return []
    return [f"- worker processes of the deployment: {len(rows)}, "
            f"RSS {sum(r for r, _ in rows):.0f} MB in all, PSS {sum(p for _, p in rows):.0f} MB"
            " in all (PSS counts shared pages once)"]


def concurrency_list(text: str) -> list[int]:
    try:
        levels = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("concurrencies are numbers >= 1, such as 1,16,64")
    return levels


def positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # so that contenders are stopped on the way out, as on Ctrl-C


def main(argv: list[str] | None = None) -> int:
    typed = sys.argv[1:] if argv is None else argv
    # `modelgate bench -- --duration 2`: the `--` lets options through gateway/cli/main.py's parser.
    typed = typed[1:] if typed[:1] == ["--"] else typed
    if own.wanted(typed):  # --url, -c, --model ...: the user's running deployment
        return own.main(typed, "python -m bench" if argv is None else "modelgate bench")
    parser = argparse.ArgumentParser(prog="modelgate bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Your own running deployment instead: modelgate "
                                     "bench --url URL --model M --body JSON (see `modelgate "
                                     "bench --url URL -h`, or docs/cli.md).")
    parser.add_argument("--scenario", default="overhead",
                        help="a file name (without .yaml) of bench/scenarios/")
    parser.add_argument("--duration", "--seconds", type=positive, metavar="SECONDS",
                        help="seconds per measurement (default: the scenario's)")
    parser.add_argument("--repeat", type=at_least_one, default=1, metavar="N",
                        help="measure each row N times and report medians (default: 1)")
    parser.add_argument("--concurrency", type=concurrency_list, metavar="1,16,64",
                        help="comma-separated connection counts (default: the scenario's)")
    parser.add_argument("--sweep", action="store_true",
                        help="start each contender once per repetition and measure every "
                        "concurrency in a row (contenders alternate per repetition, not per "
                        "concurrency): for contenders slow to start")
    args = parser.parse_args(typed)
    wrk.require_wrk()
    scenario = load(args.scenario)
    concurrencies = args.concurrency or scenario.concurrency
    seconds = args.duration or scenario.duration
    signal.signal(signal.SIGTERM, _terminated)
    try:
        results, notes, limits = run(scenario, concurrencies, seconds, args.repeat, args.sweep)
    except KeyboardInterrupt:
        print("\ninterrupted; every contender is stopped", file=sys.stderr)
        return 130
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"\nbench: {exc}", file=sys.stderr)
        return 1
    names = [c.name for c in scenario.contenders]
    baselines = scenario.baselines or names[-1:]
    unbatched = [c.name for c in scenario.contenders if c.kind != "ceiling" and not c.batched]
    lines = [*report.table(results, names, baselines, limits, unbatched), "",
             *report.summary(results, names, baselines[0]), *notes,
             *report.limit_note(limits, scenario.model_bound)]
    picture = report.plot(args.scenario, scenario.description, results, names)
    if picture is not None:
        lines += ["", f"![{scenario.description}]({picture.name})"]
    print("\n".join(lines))
    command = ("python -m bench " if argv is None else "modelgate bench ") + shlex.join(typed)
    path = report.write(args.scenario, scenario.description, command, lines)
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
