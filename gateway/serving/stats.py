"""What is counted per call, on the hot path: one :class:`VersionStats` per served version.

A dict of counts by status code and two arrays of histogram buckets, bumped with one ``bisect``
each, no locks (everything runs on the event loop) and no prometheus_client objects; the
``/metrics`` route (:mod:`gateway.web.routes.metrics`) reads them when Prometheus scrapes.
"""

from __future__ import annotations

from bisect import bisect_left

# Bucket bounds in seconds: from a pipelined cheap function (well under 1 ms) to a call at
# the default 30 s timeout.
BOUNDS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            10.0, 30.0, 60.0)
_BOUNDS_MS = tuple(b * 1000.0 for b in BOUNDS_S)  # replies carry model time in ms


class VersionStats:
    """What is counted per call for one (model, version). The dispatcher keeps one per
    (model, version) across redeploys of new content, so counters only go up while the
    version is served."""

    __slots__ = ("codes", "latency", "latency_sum_s", "model_time", "model_time_sum_ms",
                 "pool_restarts", "worker_restarts")

    def __init__(self) -> None:
        self.codes: dict[int, int] = {}
        self.latency = [0] * (len(BOUNDS_S) + 1)  # per bucket, not cumulative
        self.latency_sum_s = 0.0
        self.model_time = [0] * (len(BOUNDS_S) + 1)
        self.model_time_sum_ms = 0.0
        self.worker_restarts = 0
        self.pool_restarts = 0

    def record(self, status: int, seconds: float, model_ms: float) -> None:
        """One call that reached this version; ``model_ms`` < 0 when no worker answered."""
        codes = self.codes
        codes[status] = codes.get(status, 0) + 1
        self.latency[bisect_left(BOUNDS_S, seconds)] += 1
        self.latency_sum_s += seconds
        if model_ms >= 0.0:
            self.model_time[bisect_left(_BOUNDS_MS, model_ms)] += 1
            self.model_time_sum_ms += model_ms

    def count(self, status: int) -> None:
        """A call refused before it was handed to the pool (token, body): counted, not timed."""
        self.codes[status] = self.codes.get(status, 0) + 1
