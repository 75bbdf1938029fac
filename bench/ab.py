"""``python -m bench.ab REV``: the code at git revision REV against the working tree, in one run.

Both checkouts serve the same deployment (default: the `sum` model of configs/basics.yaml) and
the bare aiohttp+uvloop ceiling serves the same function; they are measured in turn with wrk at
each concurrency (the order rotated each repetition), each started fresh, and the table gives
medians, the ratio of each to the ceiling and of the working tree to REV. REV is exported with
``git archive`` under bench/.work/ and served with that tree first on PYTHONPATH (its workers
too), with this venv.

    python -m bench.ab HEAD~3 [--concurrency 1,64] [--duration 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import subprocess
import sys

import msgspec

from bench import report, wrk
from bench.__main__ import concurrency_list, progress
from bench.contenders import ROOT, WORK, Contender, descendants, running
from bench.wakeups import threads

BODY = {"parameters": [1, 2, 3]}
PATH = "/models/sum/latest/model"


def export(rev: str) -> str:
    """REV's tree under bench/.work/ab-<commit>/ (kept: exporting again is skipped)."""
    commit = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    target = WORK / f"ab-{commit}"
    if not (target / "gateway").exists():
        archive = subprocess.run(["git", "archive", commit], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        target.mkdir(parents=True, exist_ok=True)  # our own tree: tar (3.11.2 lacks filter=)
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return str(target.relative_to(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rev", help="the git revision to compare the working tree with")
    parser.add_argument("--config", default="configs/basics.yaml")
    parser.add_argument("--concurrency", type=concurrency_list, default=[1, 64])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    wrk.require_wrk()
    base = export(args.rev)
    contenders = [
        Contender(name="ceiling", kind="ceiling", path=PATH),
        Contender(name=f"base-{args.rev}", kind="modelgate", path=PATH,
                  config=f"{base}/{args.config}", source=base),
        Contender(name="working-tree", kind="modelgate", path=PATH, config=args.config),
    ]
    body = msgspec.json.encode(BODY)
    runs: dict[tuple[int, str], list[wrk.Measurement]] = {}
    cpu: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for k in range(args.repeat):
        for concurrency in args.concurrency:
            order = contenders[k % 3:] + contenders[:k % 3]
            for contender in order:
                progress(f"repetition {k + 1}/{args.repeat}, c={concurrency}: {contender.name}")
                with running(contender, body) as (url, pid):
                    wrk.run(url, body, concurrency, 2.0)
                    pids = [pid, *descendants(pid)]
                    before = threads(pids)
                    m = wrk.run(url, body, concurrency, args.duration)
                    after = threads(pids)
                runs.setdefault((concurrency, contender.name), []).append(m)
                calls = m.rps * args.duration
                spent = {k: after[k][0] - before[k][0] for k in after if k in before}
                server = sum(v for k, v in spent.items() if k[0] == pid)
                cpu.setdefault((concurrency, contender.name), []).append(
                    (server / calls * 1e6, (sum(spent.values()) - server) / calls * 1e6))
                progress(f"repetition {k + 1}/{args.repeat}, c={concurrency}: {contender.name}"
                         f" {m.rps:,.0f} requests/s, p50 {m.p50_ms:.3f} ms")
    print(file=sys.stderr)
    medians = {key: report.median(v) for key, v in runs.items()}
    names = [c.name for c in contenders]
    lines = [*report.table(medians, names, ["ceiling", names[1]]), "",
             "CPU time per call (µs, medians; from /proc, every thread): the server process "
             "(the gateway: event loop and ZeroMQ I/O thread) and its children (supervisor "
             "and workers):", "",
             "| concurrency | contender | server µs/call | children µs/call |",
             "|---:|---|---:|---:|"]
    for (concurrency, name), values in sorted(cpu.items()):
        lines.append(f"| {concurrency} | {name} | "
                     f"{statistics.median(v[0] for v in values):.1f} | "
                     f"{statistics.median(v[1] for v in values):.1f} |")
    lines += ["", "Per repetition (requests/s; p50 ms; server CPU µs per call):", ""]
    for (concurrency, name), measured in sorted(runs.items()):
        lines.append(f"- c={concurrency} {name}: " + ", ".join(
            f"{m.rps:,.0f} ({m.p50_ms:.3f}; {c[0]:.1f})"
            for m, c in zip(measured, cpu[(concurrency, name)])))
    print("\n".join(lines))
    command = "python -m bench.ab " + " ".join(argv if argv is not None else sys.argv[1:])
    name = f"ab-{datetime.datetime.now().strftime('%H%M')}"
    path = report.write(name, f"A/B: working tree against {args.rev}, with the ceiling",
                        command, lines)
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
