"""LitServe serving the wine forest, run by ``bench.peers`` inside LitServe's own venv.

    python bench/servers/litserve_wine.py PORT [batched]

The route is ``POST /predict`` with modelgate's body, ``{"parameters": [[11 numbers]]}``; 2
inference workers, as every contender, and LitServe's ZeroMQ queue (``fast_queue``), its faster
transport. Batched: up to 32 calls or 2 ms, as modelgate's and MLServer's batchers.
"""

import os
import sys
from pathlib import Path

import joblib
import litserve as ls
import numpy as np

MODEL = Path(os.environ.get("WINE_MODEL", "examples/wine/results/classifier.pkl")).resolve()


class Wine(ls.LitAPI):
    def setup(self, device: str) -> None:
        self.clf = joblib.load(MODEL)

    def decode_request(self, request: dict) -> np.ndarray:
        rows = np.asarray(request["parameters"], dtype=float)
        return rows if self.max_batch_size == 1 else rows.reshape(-1)  # batched: one row each

    def batch(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.stack(inputs)

    def predict(self, rows: np.ndarray) -> list[int]:
        return [int(q) for q in self.clf.predict(rows)]

    def unbatch(self, output: list[int]) -> list[int]:
        return output

    def encode_response(self, output: object) -> dict:
        return {"result": output}


if __name__ == "__main__":
    port = int(sys.argv[1])
    batched = sys.argv[2:] == ["batched"]
    api = Wine(max_batch_size=32, batch_timeout=0.002) if batched else Wine()
    server = ls.LitServer(api, accelerator="cpu", devices=1, workers_per_device=2,
                          fast_queue=True, track_requests=False)
    server.run(host="127.0.0.1", port=port, log_level="warning", generate_client_file=False)
