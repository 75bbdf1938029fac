"""The gateway's own view of a window: its ``/metrics`` read just before and just after.

The difference of the counters is what the gateway saw meanwhile for the version measured:
calls by status, their mean time at the gateway (``modelgate_request_duration_seconds``) and
inside the function (``modelgate_model_duration_seconds``). What is at the gateway but not in
the function is the queue for a free worker and the hop to it and back; what the client saw on
top of the gateway's time is outside it (network, HTTP, the load generator). Calls of other
clients to the same version during the window are counted too: then the gateway's call count
is above the client's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from bench.own.target import BadInput, http

GATEWAY = "modelgate_request_duration_seconds"
MODEL = "modelgate_model_duration_seconds"
CALLS = "modelgate_requests_total"


@dataclass
class Counters:
    """Cumulative counters of one version at one scrape."""

    codes: dict[int, float] = field(default_factory=dict)
    gateway_count: float = 0.0
    gateway_sum_s: float = 0.0
    model_count: float = 0.0
    model_sum_s: float = 0.0


@dataclass
class GatewayDelta:
    """What the gateway counted for one version during one or several windows."""

    calls: int
    codes: dict[int, int]
    gateway_sum_ms: float
    model_calls: int
    model_sum_ms: float

    @property
    def gateway_ms(self) -> float:
        return self.gateway_sum_ms / self.calls if self.calls else 0.0

    @property
    def model_ms(self) -> float:
        return self.model_sum_ms / self.model_calls if self.model_calls else 0.0

    @property
    def queue_and_hop_ms(self) -> float:
        return max(0.0, self.gateway_ms - self.model_ms)


Snapshot = dict[int, Counters]  # by version number


def scrape(base: str, token: str, model: str) -> Snapshot | None:
    """The model's counters per version; None when /metrics cannot be read."""
    try:
        status, body = http("GET", f"{base}/metrics", token, timeout=10.0)
    except BadInput:
        return None
    if status != 200:
        return None
    snapshot: Snapshot = {}
    try:
        families = list(text_string_to_metric_families(body.decode()))
    except (ValueError, UnicodeDecodeError):
        return None
    for family in families:
        for sample in family.samples:
            labels = sample.labels
            if labels.get("model") != model or not labels.get("version", "").isdigit():
                continue
            counters = snapshot.setdefault(int(labels["version"]), Counters())
            if sample.name == CALLS and labels.get("code", "").isdigit():
                counters.codes[int(labels["code"])] = sample.value
            elif sample.name == f"{GATEWAY}_count":
                counters.gateway_count = sample.value
            elif sample.name == f"{GATEWAY}_sum":
                counters.gateway_sum_s = sample.value
            elif sample.name == f"{MODEL}_count":
                counters.model_count = sample.value
            elif sample.name == f"{MODEL}_sum":
                counters.model_sum_s = sample.value
    return snapshot


def diff(before: Snapshot | None, after: Snapshot | None, version: int) -> GatewayDelta | None:
    """What was counted between two scrapes; None when either is missing, or when a counter
    went down (the gateway restarted, or the version was reloaded with new content)."""
    if before is None or after is None or version not in after:
        return None
    old, new = before.get(version, Counters()), after[version]
    codes = {code: int(n - old.codes.get(code, 0.0)) for code, n in new.codes.items()}
    delta = GatewayDelta(calls=int(new.gateway_count - old.gateway_count),
                         codes={c: n for c, n in codes.items() if n},
                         gateway_sum_ms=(new.gateway_sum_s - old.gateway_sum_s) * 1000,
                         model_calls=int(new.model_count - old.model_count),
                         model_sum_ms=(new.model_sum_s - old.model_sum_s) * 1000)
    if min(delta.calls, delta.model_calls, *codes.values(), 0) < 0:
        return None
    return delta


def add(deltas: list[GatewayDelta | None]) -> GatewayDelta | None:
    """Several windows' views together; None if any window's is missing."""
    if not deltas or any(d is None for d in deltas):
        return None
    codes: dict[int, int] = {}
    for d in deltas:
        assert d is not None
        for code, n in d.codes.items():
            codes[code] = codes.get(code, 0) + n
    present = [d for d in deltas if d is not None]
    return GatewayDelta(calls=sum(d.calls for d in present), codes=codes,
                        gateway_sum_ms=sum(d.gateway_sum_ms for d in present),
                        model_calls=sum(d.model_calls for d in present),
                        model_sum_ms=sum(d.model_sum_ms for d in present))
