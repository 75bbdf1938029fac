"""The pure parts of `modelgate bench --url`: reading wrk's lines, merging windows, the stability
rule, the A/B verdict, and which options select this mode over the scenarios."""

import pytest

from bench.own.cli import wanted
from bench.own.load import merge, parse
from bench.own.report import verdict
from bench.own.sweep import Outcome, Settings, is_stable
from bench.own.target import BadInput, Version, base_url

GRID = [p / 2 for p in range(1, 198)] + [k / 10 for k in range(986, 1000)] + [99.95, 99.99]


def wrk_output(answers, ms, statuses=None, seconds=1.0):
    """What load.lua prints for ``answers`` calls that all took ``ms``."""
    status = " ".join(f"{s}={n}" for s, n in (statuses or {200: answers}).items())
    grid = " ".join(f"{p:g}:{int(ms * 1000)}" for p in GRID)
    return (f"BENCH requests={answers} duration_us={int(seconds * 1e6)} connect=0 read=2 "
            f"write=0 timeout=1 mean_us={ms * 1000:.1f} max_us={int(ms * 1000)}\n"
            f"BENCH_STATUS {status}\nBENCH_QUANTILES {grid}\n")


def test_a_window_reads_requests_statuses_errors_and_percentiles():
    w = parse(wrk_output(100, 2.0, {200: 90, 503: 10}), 1)
    assert (w.answers, w.ok, w.rps) == (100, 90, 90.0)
    assert w.errors == {"503": 10, "read": 2, "timeout": 1}
    assert (w.p50_ms, w.p99_ms, w.max_ms) == (2.0, 2.0, 2.0)


def test_merged_windows_have_the_percentiles_of_all_their_calls():
    fast, slow = parse(wrk_output(900, 1.0), 1), parse(wrk_output(100, 10.0), 1)
    both = merge([fast, slow])
    assert (both.answers, both.seconds, both.rps) == (1000, 2.0, 500.0)
    assert both.p50_ms == 1.0 and both.p90_ms == 1.0 and both.p99_ms == 10.0
    assert both.max_ms == 10.0 and both.per_window_rps == [900.0, 100.0]


def settings(tolerance=0.1, rate=False):
    return Settings(levels=[1], rate=rate, connections=1, window=1, max_windows=10,
                    tolerance=tolerance, timeout=10)


def windows(*rates):
    return [parse(wrk_output(r, 1.0), 1) for r in rates]


def test_three_windows_within_the_tolerance_are_stable():
    assert is_stable(windows(50, 100, 104, 98), settings())
    assert not is_stable(windows(100, 104), settings())  # fewer than three
    assert not is_stable(windows(100, 104, 80), settings())


def outcome(*rates):
    merged = merge(windows(*rates))
    return Outcome(1, Version(1, "1", "http://x/models/m/1/model"), merged, True, 3, 0.0)


def test_the_candidate_is_slower_only_when_its_best_window_is_below_the_baselines_worst():
    base = outcome(100, 102, 98)
    assert verdict(base, outcome(90, 93, 95), settings()) == "slower beyond the noise"
    assert verdict(base, outcome(90, 99, 95), settings()) == "within the noise"
    assert verdict(base, outcome(110, 120, 105), settings()) == "faster beyond the noise"


@pytest.mark.parametrize(("argv", "own"), [
    (["--url", "http://h:1", "--model", "m"], True), (["-c", "d.yaml"], True),
    (["--url=http://h:1"], True), (["--compare", "1,2"], True), (["--rate", "10"], True),
    (["--scenario", "overhead", "--concurrency", "1,16"], False), ([], False),
    (["--duration", "2", "--repeat", "3"], False),
])
def test_url_config_model_compare_or_rate_select_the_deployment_mode(argv, own):
    assert wanted(argv) is own


def test_a_model_url_is_refused_with_the_base_url_it_holds():
    assert base_url("http://h:8000/") == "http://h:8000"
    assert base_url("https://h/prefix") == "https://h/prefix"
    with pytest.raises(BadInput, match=r"base URL \(http://h:8000/p\)"):
        base_url("http://h:8000/p/models/m/latest/model")
    with pytest.raises(BadInput, match=r"such as http://127\.0\.0\.1:8000"):
        base_url("h:8000")
