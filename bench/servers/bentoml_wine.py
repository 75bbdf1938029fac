"""BentoML serving the wine forest, run by ``bench.peers`` inside BentoML's own venv.

    bentoml serve bench.servers.bentoml_wine:Wine         (unbatched)
    WINE_BATCHED=1 bentoml serve ...:Wine                  (adaptive batching, up to 32)

The route is ``POST /predict`` with modelgate's body, ``{"parameters": [[11 numbers]]}``: BentoML
names the JSON fields after the method's arguments. The service has 2 workers, as every
contender. Batched, BentoML's adaptive batcher concatenates the calls' ``(1, 11)`` arrays along
the first axis (up to 32 rows); ``max_latency_ms`` is its latency budget, past which it answers
503, set high so that the figures count served calls rather than refusals.
"""

import os
from pathlib import Path

import bentoml
import joblib
import numpy as np

MODEL = Path(os.environ.get("WINE_MODEL", "examples/wine/results/classifier.pkl")).resolve()
BATCHED = os.environ.get("WINE_BATCHED") == "1"


@bentoml.service(workers=2, logging={"access": {"enabled": False}})
class Wine:
    def __init__(self) -> None:
        self.clf = joblib.load(MODEL)

    if BATCHED:
        @bentoml.api(batchable=True, batch_dim=0, max_batch_size=32, max_latency_ms=10_000)
        def predict(self, parameters: np.ndarray) -> np.ndarray:
            return self.clf.predict(parameters.astype(float, copy=False)).astype(int)
    else:
        @bentoml.api
        def predict(self, parameters: np.ndarray) -> list[int]:
            return [int(q) for q in self.clf.predict(parameters.astype(float, copy=False))]
