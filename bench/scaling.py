"""``python -m bench.scaling``: how modelgate's costs grow.

- requests/s against the number of workers (1, 2, 4) for the wine random forest at c=16;
- memory (PSS of the pool) against the number of workers for a ~300 MB model, with and
  without preload (the pool parent and every worker counted; shared pages once);
- start-up time of 20 models x 2 workers (process start to /readyz 200);
- latency (p50 at c=1) against the payload: 1 to 10,000 wine rows per call.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import msgspec
import yaml

from bench import report, wrk
from bench.contenders import ROOT, Contender, descendants, memory_mb, running

WINE = str(ROOT / "examples" / "wine" / "predict.py")
ROW = [7.4, 0.7, 0.0, 1.9, 0.076, 11.0, 34.0, 0.9978, 3.51, 0.56, 9.4]


def deployment(models: dict[str, object]) -> str:
    """Write a config to a file under bench/.work/ (git-ignored); returns its path."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False,
                                     dir=ROOT / "bench" / ".work") as handle:
        yaml.safe_dump({"models": models}, handle)
    return handle.name


def one_version(script: str, function: str, **options: object) -> dict[str, object]:
    return {"access": {"public": True}, "versions": {1: {"language": "python",
            "script": script, "function": function, **options}}}


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def throughput_by_workers(seconds: float) -> list[str]:
    rows = ["| workers | requests/s at c=16 | p50 ms |", "|---:|---:|---:|"]
    body = msgspec.json.encode({"parameters": [ROW]})
    for workers in (1, 2, 4):
        say(f"throughput: {workers} worker(s)")
        config = deployment({"wine": one_version(WINE, "predict", workers=workers)})
        contender = Contender("modelgate", "modelgate", "/models/wine/latest/model", config)
        with running(contender, body) as (url, _):
            wrk.run(url, body, 16, 2)
            m = wrk.run(url, body, 16, seconds)
        rows.append(f"| {workers} | {m.rps:,.0f} | {m.p50_ms:.2f} |")
    return rows


def memory_by_workers() -> list[str]:
    rows = ["| workers | PSS with preload (MB) | PSS without preload (MB) | "
            "RSS of one worker (MB) |", "|---:|---:|---:|---:|"]
    big = str(ROOT / "bench" / "models" / "big.py")
    body = msgspec.json.encode({"parameters": [1]})
    for workers in (1, 2, 4):
        pss = {}
        one_rss = 0.0
        for preload in (True, False):
            say(f"memory: {workers} worker(s), preload={preload}")
            config = deployment({"big": one_version(big, "predict", workers=workers,
                                                    preload=preload)})
            contender = Contender("modelgate", "modelgate", "/models/big/latest/model", config)
            with running(contender, body) as (_, pid):
                pools = descendants(pid)
                figures = [memory_mb(p) for p in pools]
                pss[preload] = sum(p for _, p in figures)
                one_rss = max(r for r, _ in figures)
        rows.append(f"| {workers} | {pss[True]:.0f} | {pss[False]:.0f} | {one_rss:.0f} |")
    return rows


def startup_time() -> list[str]:
    """The gateway listens only once every pool is up, so the first answered call marks the end
    of start-up (polled every 0.2 s)."""
    script = str(ROOT / "examples" / "basics" / "basics.py")
    config = deployment({f"m{i:02d}": one_version(script, "add", workers=2) for i in range(20)})
    say("start-up: 20 models x 2 workers")
    body = msgspec.json.encode({"parameters": [1]})
    started = time.monotonic()
    contender = Contender("modelgate", "modelgate", "/models/m19/latest/model", config)
    with running(contender, body, timeout=300):
        elapsed = time.monotonic() - started
    return [f"- start-up of 20 models x 2 workers (40 worker processes, 20 pool parents): "
            f"{elapsed:.1f} s from process start to the first answered call"]


def latency_by_payload(seconds: float) -> list[str]:
    rows = ["| rows per call | request bytes | p50 ms at c=1 | requests/s |",
            "|---:|---:|---:|---:|"]
    config = deployment({"wine": one_version(WINE, "predict", workers=2)})
    contender = Contender("modelgate", "modelgate", "/models/wine/latest/model", config)
    probe = msgspec.json.encode({"parameters": [ROW]})
    with running(contender, probe) as (url, _):
        for count in (1, 10, 100, 1000, 10000):
            say(f"payload: {count} row(s)")
            body = msgspec.json.encode({"parameters": [[ROW] * count]})
            m = wrk.run(url, body, 1, seconds)
            rows.append(f"| {count:,} | {len(body):,} | {m.p50_ms:.2f} | {m.rps:,.0f} |")
    return rows


def main() -> int:
    wrk.require_wrk()
    (ROOT / "bench" / ".work").mkdir(exist_ok=True)
    seconds = float(os.environ.get("BENCH_SECONDS", "5"))
    lines = ["## Requests/s against workers (wine RF, 2 cores)", "",
             *throughput_by_workers(seconds), "",
             "## Memory against workers (a ~300 MB model)", "", *memory_by_workers(), "",
             "## Start-up", "", *startup_time(), "",
             "## Latency against payload (wine RF, one call at a time)", "",
             *latency_by_payload(seconds)]
    print("\n".join(lines))
    path = report.write("scaling", "How modelgate's costs grow", "python -m bench.scaling",
                        lines)
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
