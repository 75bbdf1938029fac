"""``python -m bench.tensors``: a V2 call carrying a 10,000 x 11 FP64 matrix, at c=1.

The wine forest's ``predict`` behind modelgate, called through ``/v2/models/wine/versions/N/infer``:

* ``numpy-binary``: version 2 (``tensors: numpy``), the matrix as Triton binary data (what
  ``tritonclient`` sends): the function gets a NumPy view of the received frame;
* ``numpy-json``: version 2, the matrix as JSON ``data``: made into an array in the worker;
* ``lists-json``: version 1 (default), JSON ``data``: nested lists made in the gateway;
* ``mlserver-json``: MLServer 1.7.1 (unbatched, 2 workers) on the same JSON request (its HTTP
  server takes no binary tensor data);

beside the in-process predict time of the same matrix (``predict(ndarray)`` in the harness's own
process, median of 20 calls, timed before each repetition). Each contender is started fresh
and measured in turn (order rotated each repetition); medians of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import runpy
import statistics
import sys
import time

import msgspec
import numpy as np

from bench import report, wrk
from bench.__main__ import progress
from bench.contenders import ROOT, Contender, running

ROWS, COLUMNS = 10_000, 11
CONFIG = "bench/configs/wine-tensors.yaml"


def matrix() -> np.ndarray:
    rng = np.random.default_rng(7)  # plausible wines: around the data set's first row
    first = np.array([7.4, 0.7, 0.0, 1.9, 0.076, 11.0, 34.0, 0.9978, 3.51, 0.56, 9.4])
    return first * rng.uniform(0.8, 1.2, size=(ROWS, COLUMNS))


def bodies(x: np.ndarray) -> dict[str, tuple[bytes, dict[str, str]]]:
    data = {"name": "features", "shape": [ROWS, COLUMNS], "datatype": "FP64"}
    json_body = msgspec.json.encode({"inputs": [{**data, "data": x.ravel().tolist()}]})
    mlserver = msgspec.json.encode({"inputs": [{**data, "name": "predict",
                                                "data": x.ravel().tolist()}]})
    raw = x.astype("<f8").tobytes()
    head = msgspec.json.encode({"inputs": [{**data, "parameters": {"binary_data_size":
                                                                   len(raw)}}]})
    return {"binary": (head + raw, {"Inference-Header-Content-Length": str(len(head))}),
            "json": (json_body, {}), "mlserver": (mlserver, {})}


def predict_ms(x: np.ndarray, calls: int = 20) -> float:
    predict = runpy.run_path(str(ROOT / "examples" / "wine" / "predict.py"))["predict"]
    predict(x)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        predict(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tensors", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    wrk.require_wrk()
    x = matrix()
    body = bodies(x)
    cases = [
        (Contender(name="numpy-binary", kind="modelgate", config=CONFIG,
                   path="/v2/models/wine/versions/2/infer"), *body["binary"]),
        (Contender(name="numpy-json", kind="modelgate", config=CONFIG,
                   path="/v2/models/wine/versions/2/infer"), *body["json"]),
        (Contender(name="lists-json", kind="modelgate", config=CONFIG,
                   path="/v2/models/wine/versions/1/infer"), *body["json"]),
        (Contender(name="mlserver-json", kind="mlserver", path="/v2/models/wine/infer"),
         *body["mlserver"]),
    ]
    runs: dict[str, list[wrk.Measurement]] = {}
    inprocess: list[float] = []
    for k in range(args.repeat):
        progress(f"repetition {k + 1}/{args.repeat}: timing predict in-process")
        inprocess.append(predict_ms(x))
        for contender, data, headers in cases[k % 4:] + cases[:k % 4]:
            progress(f"repetition {k + 1}/{args.repeat}: {contender.name}")
            with running(contender, body["json"][0] if contender.kind == "modelgate"
                         else data) as (url, _):
                wrk.run(url, data, 1, 2.0, headers=headers)
                m = wrk.run(url, data, 1, args.duration, headers=headers)
            runs.setdefault(contender.name, []).append(m)
            progress(f"repetition {k + 1}/{args.repeat}: {contender.name} p50 {m.p50_ms:.2f} ms,"
                     f" {m.errors} errors")
    print(file=sys.stderr)
    own = statistics.median(inprocess)
    lines = [f"In-process `predict` of the {ROWS:,} x {COLUMNS} matrix: **{own:.2f} ms** "
             f"(median; per repetition {', '.join(f'{t:.2f}' for t in inprocess)}).", "",
             "| c=1 | p50 ms | p99 ms | requests/s | errors | p50 / in-process predict | "
             "p50 / mlserver-json p50 |", "|---|---:|---:|---:|---:|---:|---:|"]
    theirs = report.median(runs["mlserver-json"]).p50_ms
    for contender, _, _ in cases:
        m = report.median(runs[contender.name])
        lines.append(f"| {contender.name} | {m.p50_ms:.2f} | {m.p99_ms:.2f} | {m.rps:.1f} | "
                     f"{m.errors} | {m.p50_ms / own:.2f} | {m.p50_ms / theirs:.2f} |")
    lines += ["", "Per repetition, p50 ms:", ""]
    lines += [f"- {name}: {', '.join(f'{m.p50_ms:.2f}' for m in values)}"
              for name, values in runs.items()]
    lines += ["", f"Bodies: binary {len(body['binary'][0]):,} bytes, JSON "
              f"{len(body['json'][0]):,} bytes."]
    print("\n".join(lines))
    command = "python -m bench.tensors " + " ".join(argv if argv is not None else sys.argv[1:])
    path = report.write("v2-tensors", "V2 binary tensors (10,000 x 11 FP64) at c=1", command,
                        lines)
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
