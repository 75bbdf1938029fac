"""The report of a run: a markdown file, a CSV, a plot, and the plain summary printed at the end.

The verdict of an A/B compares the windows each version's figures come from: the candidate is
slower beyond the noise at a level when even its best window is worse than the baseline's worst
(requests/s; at a held rate, p50 latency). With three windows each, identical versions do that
one time in twenty by chance.
"""

from __future__ import annotations

import csv
import datetime
from pathlib import Path

from bench import report as scenario_report
from bench.own.sweep import STABLE_WINDOWS, Outcome, Settings
from bench.own.target import Target

MARKDOWN, CSV, PLOT = "bench.md", "bench.csv", "bench.png"


def errors_text(outcome: Outcome) -> str:
    errors = outcome.result.errors
    if not errors:
        return "0"
    return f"{sum(errors.values())} ({', '.join(f'{k}: {n}' for k, n in errors.items())})"


def windows_text(outcome: Outcome) -> str:
    if outcome.stable:
        return str(outcome.windows)
    return f"{outcome.windows}, unstable (last {STABLE_WINDOWS} spread {outcome.spread:.0%})"


def level_name(settings: Settings) -> str:
    return "rate (requests/s)" if settings.rate else "concurrency"


def verdict(base: Outcome, candidate: Outcome, settings: Settings) -> str:
    """``slower``, ``faster`` or ``within the noise``: see the module's docstring."""
    if settings.rate:  # the rate is held: latency tells them apart (lower is better)
        a, b = base.result.per_window_p50, candidate.result.per_window_p50
        slower, faster = min(b) > max(a), max(b) < min(a)
    else:
        a, b = base.result.per_window_rps, candidate.result.per_window_rps
        slower, faster = max(b) < min(a), min(b) > max(a)
    if not a or not b:
        return "not measured"
    return "slower beyond the noise" if slower else \
        "faster beyond the noise" if faster else "within the noise"


def pairs(outcomes: list[Outcome]) -> list[tuple[Outcome, Outcome]]:
    """(baseline, candidate) per level of an A/B run, in level order."""
    by_level: dict[int, list[Outcome]] = {}
    for outcome in outcomes:
        by_level.setdefault(outcome.level, []).append(outcome)
    return [(found[0], found[1]) for found in by_level.values() if len(found) == 2]


def ratio(a: float, b: float) -> str:
    return f"{b / a:.2f}" if a > 0 else "-"


def main_table(outcomes: list[Outcome], settings: Settings) -> list[str]:
    rows = [f"| {level_name(settings)} | version | requests/s | p50 ms | p90 ms | p99 ms | max ms "
            "| errors | windows |", "|---:|---|---:|---:|---:|---:|---:|---|---|"]
    for o in outcomes:
        r = o.result
        rows.append(f"| {o.level} | {o.version.title} | {r.rps:,.1f} | {r.p50_ms:.2f} | "
                    f"{r.p90_ms:.2f} | {r.p99_ms:.2f} | {r.max_ms:.2f} | {errors_text(o)} | "
                    f"{windows_text(o)} |")
    return rows


def gateway_table(outcomes: list[Outcome], settings: Settings) -> list[str]:
    rows = [f"| {level_name(settings)} | version | calls (client / gateway) | client mean ms | "
            "at the gateway ms | in the model ms | queue + hop ms | outside the gateway ms | "
            "gateway statuses |", "|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for o in outcomes:
        g, r = o.result.gateway, o.result
        if g is None:
            rows.append(f"| {o.level} | {o.version.title} | {r.answers} / - | {r.mean_ms:.2f} "
                        "| - | - | - | - | not in /metrics (unreadable, or hidden from this "
                        "token) |")
            continue
        codes = ", ".join(f"{c}: {n}" for c, n in sorted(g.codes.items()))
        rows.append(f"| {o.level} | {o.version.title} | {r.answers} / {g.calls} | "
                    f"{r.mean_ms:.2f} | {g.gateway_ms:.2f} | {g.model_ms:.2f} | "
                    f"{g.queue_and_hop_ms:.2f} | {max(0.0, r.mean_ms - g.gateway_ms):.2f} | "
                    f"{codes} |")
    return rows


def compare_table(outcomes: list[Outcome], settings: Settings) -> list[str]:
    found = pairs(outcomes)
    if not found:
        return []
    a, b = found[0][0].version.title, found[0][1].version.title
    rows = [f"| {level_name(settings)} | {a} requests/s | {b} requests/s | ratio | "
            f"{a} p99 ms | {b} p99 ms | p99 ratio | {b} against {a} |",
            "|---:|---:|---:|---:|---:|---:|---:|---|"]
    for base, cand in found:
        rows.append(f"| {base.level} | {base.result.rps:,.1f} | {cand.result.rps:,.1f} | "
                    f"{ratio(base.result.rps, cand.result.rps)} | {base.result.p99_ms:.2f} | "
                    f"{cand.result.p99_ms:.2f} | "
                    f"{ratio(base.result.p99_ms, cand.result.p99_ms)} | "
                    f"{verdict(base, cand, settings)} |")
    return rows


def conclusion(outcomes: list[Outcome], settings: Settings) -> list[str]:
    """The A/B in one sentence per verdict; nothing without an A/B."""
    found = pairs(outcomes)
    if not found:
        return []
    a, b = found[0][0].version.title, found[0][1].version.title
    unit = "" if settings.rate else "c="
    by_verdict: dict[str, list[str]] = {}
    for base, cand in found:
        what = (f"p50 {cand.result.p50_ms:.2f} ms against {base.result.p50_ms:.2f}"
                if settings.rate else
                f"{ratio(base.result.rps, cand.result.rps)}x the requests/s")
        by_verdict.setdefault(verdict(base, cand, settings), []).append(
            f"{unit}{base.level}{'/s' if settings.rate else ''} ({what})")
    lines = [f"{b} against {a}: {v} at {', '.join(levels)}"
             for v, levels in by_verdict.items()]
    if "slower beyond the noise" not in by_verdict:
        lines.append(f"{b} is not slower than {a} beyond the noise at any level measured.")
    unstable = [o for o in outcomes if not o.stable]
    if unstable:
        lines.append(f"{len(unstable)} of {len(outcomes)} rows never had {STABLE_WINDOWS} "
                     "windows within the tolerance: read them with care.")
    return lines


def plain_table(outcomes: list[Outcome], settings: Settings) -> list[str]:
    """The main figures as aligned text, for the terminal."""
    head = ["rate/s" if settings.rate else "conc", "version", "requests/s", "p50 ms",
            "p90 ms", "p99 ms", "max ms", "errors", "windows"]
    body = [[str(o.level), o.version.title, f"{o.result.rps:,.1f}", f"{o.result.p50_ms:.2f}",
             f"{o.result.p90_ms:.2f}", f"{o.result.p99_ms:.2f}", f"{o.result.max_ms:.2f}",
             errors_text(o), windows_text(o)] for o in outcomes]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    return ["  ".join(cell.rjust(w) if i not in (1, 7, 8) else cell.ljust(w)
                      for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
            for row in [head, *body]]


def write_csv(path: Path, outcomes: list[Outcome], settings: Settings) -> None:
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["level_kind", "level", "connections", "version", "named", "requests_per_s",
                      "p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms", "answers", "errors",
                      "errors_by_kind", "windows", "stable", "spread", "gateway_calls",
                      "gateway_mean_ms", "model_mean_ms", "queue_hop_mean_ms"])
        for o in outcomes:
            r, g = o.result, o.result.gateway
            out.writerow([
                "rate" if settings.rate else "concurrency", o.level,
                settings.connections if settings.rate else o.level, o.version.number,
                o.version.named, f"{r.rps:.2f}", f"{r.p50_ms:.3f}", f"{r.p90_ms:.3f}",
                f"{r.p99_ms:.3f}", f"{r.max_ms:.3f}", f"{r.mean_ms:.3f}", r.answers,
                sum(r.errors.values()), " ".join(f"{k}={n}" for k, n in r.errors.items()),
                o.windows, o.stable, f"{o.spread:.4f}",
                "" if g is None else g.calls, "" if g is None else f"{g.gateway_ms:.3f}",
                "" if g is None else f"{g.model_ms:.3f}",
                "" if g is None else f"{g.queue_and_hop_ms:.3f}"])


def write(out: Path, target: Target, settings: Settings, outcomes: list[Outcome], command: str,
          note: str = "") -> list[Path]:
    """bench.md, bench.csv and bench.png (when matplotlib is there) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    versions = " against ".join(v.title for v in reversed(target.versions))
    title = f"{target.model} {versions}" if len(target.versions) == 2 else \
        f"{target.model} {target.versions[0].title}"
    results = {(o.level, o.version.title): o.result for o in outcomes}
    picture = scenario_report.plot("own", title, results,  # type: ignore[arg-type]
                                   [v.title for v in target.versions], path=out / PLOT,
                                   xlabel="requests/s asked" if settings.rate
                                   else "concurrent connections")
    load = (f"rates {', '.join(map(str, settings.levels))} requests/s over "
            f"{settings.connections} connections" if settings.rate else
            f"concurrency {', '.join(map(str, settings.levels))}")
    lines = [f"# modelgate bench: {title}", "", *scenario_report.machine(),
             f"- command: `{command}`",
             f"- run: {datetime.datetime.now().isoformat(timespec='seconds')}",
             f"- gateway: {target.base}; body: {len(target.body)} bytes",
             f"- load: {load}; windows of {settings.window} s until {STABLE_WINDOWS} agree "
             f"within {settings.tolerance:.0%} (at most {settings.max_windows})",
             "- requests/s counts 2xx answers; latencies are of every answer, as the client "
             "saw them", *([f"- {note}"] if note else []), "",
             *main_table(outcomes, settings), ""]
    compared = compare_table(outcomes, settings)
    if compared:
        lines += ["## A/B", "", *compared, "", *[f"- {c}" for c in conclusion(outcomes,
                                                                            settings)], ""]
    lines += ["## Where the time goes (the gateway's /metrics over the same windows)", "",
              *gateway_table(outcomes, settings), "",
              "Queue + hop: waiting for a free worker, and the trip to it and back. Outside "
              "the gateway: network, HTTP and the load generator. A few more calls at the "
              "gateway than at the client: those in flight when a window ended; many more: "
              "other clients called the same version meanwhile.", ""]
    if picture is not None:
        lines += [f"![{title}]({picture.name})", ""]
    (out / MARKDOWN).write_text("\n".join(lines))
    write_csv(out / CSV, outcomes, settings)
    return [out / MARKDOWN, out / CSV, *([picture] if picture is not None else [])]
