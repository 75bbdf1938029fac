"""``modelgate bench --url URL | -c CONFIG --model M ...``: measure a running deployment.

Checks the model, the versions and the token against the gateway, and that the body gets a 200;
then sweeps concurrency (or holds request rates) with wrk, window after window until throughput
is stable, and writes bench.md, bench.csv and bench.png into --out. With --compare A,B the two
versions are measured alternately in the same run, and the report says whether B is slower than
A beyond the noise. The gateway's /metrics over the same windows shows where the time goes.

Exit status: 0 measured (whatever the figures), 2 bad input (unreachable gateway, token
refused, body rejected, unknown model or version, wrk missing), 1 the measurement failed,
130 interrupted (the levels done are written).
"""

from __future__ import annotations

import argparse
import datetime
import re
import shlex
import signal
import sys
from pathlib import Path
from types import FrameType

from bench.own import report, sweep
from bench.own.target import (
    BadInput,
    Target,
    Unreachable,
    base_url,
    example_from_config,
    find,
    read_body,
    url_from_config,
)
from bench.wrk import require_wrk

DEFAULT_TOKEN_ENV = "MODELGATE_TOKEN"
# What tells this mode apart from the scenarios of bench/scenarios/ (see bench/__main__.py).
OPTIONS = ("--url", "-c", "--config", "--model", "--compare", "--rate")


def wanted(argv: list[str]) -> bool:
    return any(a in OPTIONS or a.split("=", 1)[0] in OPTIONS or
               (a.startswith("-c") and not a.startswith("--")) for a in argv)


def number_list(text: str, what: str) -> list[int]:
    try:
        levels = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of {what}: {text!r}") from None
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError(f"{what} are whole numbers >= 1, such as 1,4,16")
    return levels


def concurrencies(text: str) -> list[int]:
    return number_list(text, "connection counts")


def rates(text: str) -> list[int]:
    return number_list(re.sub(r"\s*/\s*s\b", "", text), "rates (requests/s)")


def at_least(minimum: int) -> type[int]:
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}")
        return value
    return convert  # type: ignore[return-value]


def percent(text: str) -> float:
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentage: {text!r}") from None
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError("a percentage in (0, 100], such as 10")
    return value / 100


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="modelgate bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="the gateway's base URL, such as http://127.0.0.1:8000")
    where.add_argument("-c", "--config", help="a deployment file: the URL is its "
                       "gateway.listen, and the body defaults to the model's example")
    p.add_argument("--model", required=True, help="the model to call")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--version", help="a version number (default: the production version)")
    which.add_argument("--label", choices=("prod", "latest"),
                       help="the version this label serves when the run starts")
    which.add_argument("--latest", action="store_true", help="the same as --label latest")
    which.add_argument("--compare", metavar="A,B", help="A/B: two versions (numbers, prod or "
                       "latest) measured alternately; A is the baseline")
    p.add_argument("--body", help="the request body: JSON text, or @FILE (default with -c: "
                   "the model's example)")
    p.add_argument("--token-env", default=DEFAULT_TOKEN_ENV, metavar="VAR",
                   help=f"the environment variable holding the token (default: "
                   f"{DEFAULT_TOKEN_ENV})")
    load = p.add_mutually_exclusive_group()
    load.add_argument("--concurrency", type=concurrencies, default=[1, 4, 16, 64],
                      metavar="1,4,16,64", help="connection counts to sweep (default: 1,4,16,64)")
    load.add_argument("--rate", type=rates, metavar="N/s",
                      help="hold these request rates instead, such as 200/s or 100,200,400")
    p.add_argument("--connections", type=at_least(1), default=32, metavar="N",
                   help="connections that carry a --rate (default: 32)")
    p.add_argument("--window", type=at_least(1), default=5, metavar="SECONDS",
                   help="seconds per measurement window (default: 5)")
    p.add_argument("--max-windows", type=at_least(sweep.STABLE_WINDOWS), default=10,
                   metavar="N", help="windows at most per level and version, which caps its "
                   "time at N x --window (default: 10)")
    p.add_argument("--tolerance", type=percent, default=0.10, metavar="PERCENT",
                   help="how far apart 3 windows' requests/s may be to count as stable "
                   "(default: 10)")
    p.add_argument("--timeout", type=at_least(1), default=10, metavar="SECONDS",
                   help="a call slower than this counts as a timeout error (default: 10)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="where the report goes (default: modelgate-bench-DATE-TIME here)")
    return p


def _target(args: argparse.Namespace) -> Target:
    base = url_from_config(args.config) if args.config else base_url(args.url)
    if args.body is not None:
        body = read_body(args.body)
    else:
        example = example_from_config(args.config, args.model) if args.config else None
        if example is None:
            raise BadInput("--body is needed: the JSON a call of the model sends, or @FILE "
                           "holding it" + ("" if not args.config else
                                           f" (model `{args.model}` has no example in "
                                           f"{args.config})"))
        body = example
    if args.compare:
        names = [n.strip() for n in args.compare.split(",")]
        if len(names) != 2 or not all(names):
            raise BadInput(f"--compare {args.compare}: name two versions, such as 1,2 or "
                           "prod,latest")
    else:
        names = [args.version or ("latest" if args.latest else args.label or "prod")]
    try:
        return find(base, args.model, names, body, args.token_env)
    except Unreachable as exc:
        if args.config:
            raise Unreachable(f"{exc}\n(the address is gateway.listen in {args.config}; "
                              "a gateway started with --listen elsewhere needs --url)") from None
        raise


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str], prog_command: str = "modelgate bench") -> int:
    args = build_parser().parse_args(argv)
    require_wrk()  # exit 2 with the command that installs it
    try:
        target = _target(args)
    except BadInput as exc:
        print(f"modelgate bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    settings = sweep.Settings(levels=args.rate or args.concurrency, rate=bool(args.rate),
                              connections=args.connections, window=args.window,
                              max_windows=args.max_windows, tolerance=args.tolerance,
                              timeout=args.timeout)
    out = args.out or Path(f"modelgate-bench-{datetime.datetime.now():%Y%m%d-%H%M%S}")
    command = f"{prog_command} {shlex.join(argv)}"
    if len(command) > 300:
        command = command[:297] + "..."
    signal.signal(signal.SIGTERM, _terminated)
    outcomes: list[sweep.Outcome] = []
    status, note = 0, ""
    try:
        sweep.run(target, settings, into=outcomes)
    except KeyboardInterrupt:
        print("\ninterrupted; " + ("the levels done are written" if outcomes else
                                   "no level was done, nothing is written"), file=sys.stderr)
        status, note = 130, "interrupted: only the levels done are reported"
    except RuntimeError as exc:
        print(f"\nmodelgate bench: {exc}", file=sys.stderr)
        if not outcomes:
            return 1
        status, note = 1, f"stopped by an error: {exc}"
    if not outcomes:
        return status
    files = report.write(out, target, settings, outcomes, command, note)
    conclusion = report.conclusion(outcomes, settings)
    print("\n".join([*report.plain_table(outcomes, settings), *([""] if conclusion else []),
                     *conclusion, "", f"report: {', '.join(str(f) for f in files)}"]))
    return status
