"""``python -m bench`` / ``modelgate bench``: run a scenario of bench/scenarios/ and report.

Contenders are started by the harness, warmed up, and measured with wrk at each concurrency,
alternating between contenders (so drift on a shared machine hits all of them alike), repeated
``--repeat`` times; the table shows medians. Benchmarks print figures; they assert nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import msgspec
import yaml

from bench import report, wrk
from bench.contenders import Contender, descendants, memory_mb, running

SCENARIOS = Path(__file__).resolve().parent / "scenarios"


class Scenario(msgspec.Struct, frozen=True):
    description: str
    body: object
    contenders: list[Contender]
    concurrency: list[int] = msgspec.field(default_factory=lambda: [1, 16, 64])
    seconds: float = 10.0
    baselines: list[str] = msgspec.field(default_factory=list)  # ratios are taken to these
    memory: str = ""  # the contender whose worker memory is reported


def load(name: str) -> Scenario:
    path = SCENARIOS / f"{name}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in SCENARIOS.glob("*.yaml")))
        raise SystemExit(f"no scenario {name}; known: {known}")
    return msgspec.convert(yaml.safe_load(path.read_text()), Scenario)


def progress(text: str) -> None:
    print(f"\r\033[K{text}" if sys.stderr.isatty() else text, end="" if sys.stderr.isatty()
          else "\n", file=sys.stderr, flush=True)


def run(scenario: Scenario, concurrencies: list[int], seconds: float, repeat: int
        ) -> tuple[dict[tuple[int, str], wrk.Measurement], list[str]]:
    default_body = msgspec.json.encode(scenario.body)
    runs: dict[tuple[int, str], list[wrk.Measurement]] = {}
    notes: list[str] = []
    total = len(concurrencies) * len(scenario.contenders) * repeat
    step = 0
    for k in range(repeat):
        for concurrency in concurrencies:
            for contender in scenario.contenders:
                body = (default_body if contender.body is None
                        else msgspec.json.encode(contender.body))
                step += 1
                progress(f"[{step}/{total}] {contender.name} at c={concurrency} "
                         f"(run {k + 1}/{repeat}): starting")
                with running(contender, body) as (url, pid):
                    progress(f"[{step}/{total}] {contender.name} at c={concurrency} "
                             f"(run {k + 1}/{repeat}): measuring {seconds:g} s")
                    wrk.run(url, body, concurrency, min(2.0, seconds), contender.token)  # warm
                    runs.setdefault((concurrency, contender.name), []).append(
                        wrk.run(url, body, concurrency, seconds, contender.token))
                    if contender.name == scenario.memory and k == 0 and not notes:
                        notes = worker_memory(pid)
    progress("done")
    return {key: report.median(value) for key, value in runs.items()}, notes


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelgate bench", description=__doc__)
    parser.add_argument("--scenario", default="overhead")
    parser.add_argument("--seconds", type=float, help="per measurement (default: scenario's)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--concurrency", help="comma-separated (default: scenario's)")
    args = parser.parse_args(argv)
    wrk.require_wrk()
    scenario = load(args.scenario)
    concurrencies = ([int(c) for c in args.concurrency.split(",")] if args.concurrency
                     else scenario.concurrency)
    seconds = args.seconds or scenario.seconds
    results, notes = run(scenario, concurrencies, seconds, args.repeat)
    names = [c.name for c in scenario.contenders]
    lines = [*report.table(results, names, scenario.baselines or names[-1:]), "", *notes]
    picture = report.plot(args.scenario, scenario.description, results, names)
    if picture is not None:
        lines += ["", f"![{scenario.description}]({picture.name})"]
    print("\n".join(lines))
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    path = report.write(args.scenario, scenario.description, command.strip(), lines)
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
