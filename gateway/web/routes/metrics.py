"""Prometheus metrics at ``GET /metrics`` (SPEC §7), at next to no cost per call.

Most of what is exported is state the gateway keeps anyway (ready workers, calls held by
workers, calls waiting in a version's queue), read when Prometheus scrapes, by a custom
collector. What must be recorded per call is kept in one
:class:`~gateway.serving.stats.VersionStats` per served (model, version), with no
prometheus_client objects on the hot path.

Labels are bounded: ``model`` and ``version`` only ever come from the deployment (a call to a
model or version that is not served is counted without them), ``code`` is an HTTP status.
Request ids and tokens are never labels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from gateway import __version__
from gateway.serving.service import Service
from gateway.serving.stats import BOUNDS_S
from gateway.web.keys import SERVICE
from gateway.web.openapi import documented

_LE = [*map(floatToGoString, BOUNDS_S), "+Inf"]
EXPOSITION = "text/plain; version=0.0.4; charset=utf-8"  # OpenMetrics when Accept asks for it


def _cumulative(buckets: list[int]) -> list[tuple[str, float]]:
    total = 0
    out = []
    for le, n in zip(_LE, buckets):
        total += n
        out.append((le, float(total)))
    return out


class GatewayCollector(Collector):
    """Reads the running service at scrape time; nothing here runs per call."""

    def __init__(self, service: Service, public_only: bool = False) -> None:
        self.service = service
        self.public_only = public_only  # anonymous scrapes: restricted models are not named

    def _shown(self, model: str) -> bool:
        if not self.public_only:
            return True
        routes = self.service.table.models.get(model)
        return routes is not None and routes.public

    def collect(self) -> Iterator[Metric]:
        service = self.service
        version = ["model", "version"]
        requests = CounterMetricFamily(
            "modelgate_requests", "Model calls answered, by model, version and HTTP status "
            "(499: the client went away first).", labels=[*version, "code"])
        latency = HistogramMetricFamily(
            "modelgate_request_duration_seconds", "Time of a model call at the gateway, from "
            "the request to the response, for calls that reached their version's pool.",
            labels=version)
        model_time = HistogramMetricFamily(
            "modelgate_model_duration_seconds", "Time inside the user's function, as the "
            "worker measured it (also for calls whose function raised).", labels=version)
        worker_restarts = CounterMetricFamily(
            "modelgate_worker_restarts", "Worker processes that exited (crash, kill, timeout) "
            "and were replaced.", labels=version)
        pool_restarts = CounterMetricFamily(
            "modelgate_pool_restarts", "Pool parent processes that exited and were restarted "
            "with their workers.", labels=version)
        stats = service.dispatcher.stats if service.dispatcher is not None else {}
        for (model, number), s in list(stats.items()):
            if not self._shown(model):
                continue
            labels = [model, str(number)]
            for code, n in sorted(s.codes.items()):
                requests.add_metric([*labels, str(code)], n)
            latency.add_metric(labels, _cumulative(s.latency), s.latency_sum_s)
            model_time.add_metric(labels, _cumulative(s.model_time),
                                  s.model_time_sum_ms / 1000.0)
            worker_restarts.add_metric(labels, s.worker_restarts)
            pool_restarts.add_metric(labels, s.pool_restarts)
        yield from (requests, latency, model_time, worker_restarts, pool_restarts)
        unrouted = CounterMetricFamily(
            "modelgate_unrouted_requests", "Model calls naming a model or version that is not "
            "served (no model label: its name came from the URL).", labels=["code"])
        for code, n in sorted(service.unrouted.items()):
            unrouted.add_metric([str(code)], n)
        yield unrouted
        yield from self._pool_state(service, self._shown)
        yield InfoMetricFamily("modelgate_build", "The modelgate release serving.",
                               value={"version": __version__})

    @staticmethod
    def _pool_state(service: Service, shown: Callable[[str], bool]) -> Iterator[Metric]:
        version = ["model", "version"]
        ready = GaugeMetricFamily("modelgate_workers_ready",
                                  "Workers connected and serving, per version.", labels=version)
        expected = GaugeMetricFamily("modelgate_workers_expected",
                                     "Local workers the version is configured to run.",
                                     labels=version)
        in_flight = GaugeMetricFamily("modelgate_calls_in_flight",
                                      "Calls handed to a worker and not answered yet.",
                                      labels=version)
        queued = GaugeMetricFamily("modelgate_queue_depth", "Calls waiting for a free worker "
                                   "(bounded by max_queue; beyond it: 503).", labels=version)
        for pool in service.served:
            if not shown(pool.model):
                continue
            labels = [pool.model, str(pool.version)]
            ready.add_metric(labels, len(pool.workers))
            expected.add_metric(labels, pool.expected_workers)
            in_flight.add_metric(labels, sum(len(w.calls) for w in pool.workers))
            queued.add_metric(labels, len(pool.waiting))
        yield from (ready, expected, in_flight, queued)


def install(app: web.Application) -> None:
    """``GET /metrics``, reading the app's service: every model's series for an admin token,
    the public models' for anyone else."""
    service = app[SERVICE]
    registries: dict[bool, CollectorRegistry] = {}
    for public_only in (False, True):
        registry = CollectorRegistry(auto_describe=False)
        registry.register(GatewayCollector(service, public_only))
        ProcessCollector(registry=registry)  # the gateway's own CPU, memory and open files
        registries[public_only] = registry

    @documented("Prometheus metrics (OpenMetrics when Accept asks for it): public models' "
                "series, every model's with an admin token", "operations",
                content_type=EXPOSITION)
    async def metrics(request: web.Request) -> web.Response:
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        registry = registries[not service.is_admin(request.headers.get("Authorization"))]
        return web.Response(body=encode(registry), headers={"Content-Type": content_type,
                                                            "Cache-Control": "no-store",
                                                            "Vary": "Authorization"})

    app.router.add_get("/metrics", metrics)
