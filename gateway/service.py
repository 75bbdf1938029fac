"""One running deployment: the dispatcher, a pool process per served version, the routing table.

``start`` brings every pool up and waits until each has its workers (or has failed, with the
reason); ``stop`` drains them. The HTTP app holds one :class:`Service` in its state.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable

import structlog

from gateway.auth import TokenBook
from gateway.config import Deployment
from gateway.dispatch import Dispatcher, VersionPool
from gateway.pools import PoolProcess
from gateway.routing import RoutingTable, model_routes
from gateway.versions import version_id
from workers.wire import PoolSpec

log = structlog.get_logger("modelgate.service")

Progress = Callable[[int, int, VersionPool], None]


class Service:
    def __init__(self, deployment: Deployment, progress: Progress | None = None,
                 json_logs: bool = True) -> None:
        self.deployment = deployment
        self.tokens = TokenBook(deployment.tokens)
        self.progress = progress
        self.json_logs = json_logs
        self.runtime_dir = tempfile.mkdtemp(prefix="modelgate-")
        self.dispatcher: Dispatcher | None = None
        self.pools: dict[tuple[str, int, str], PoolProcess] = {}
        self.table = RoutingTable({})

    @property
    def served(self) -> list[VersionPool]:
        return [p.pool for p in self.pools.values()]

    def _build(self) -> RoutingTable:
        assert self.dispatcher is not None
        d, settings = self.deployment, self.deployment.gateway
        routes = {}
        for name, model in d.models.items():
            pools = {}
            for n, version in sorted(model.versions.items()):
                if version.unpublished:
                    continue
                vid = version_id(d, name, model, version)
                pool = VersionPool(
                    model=name, version=n, version_id=vid,
                    timeout_s=version.timeout_s or settings.request_timeout_s,
                    max_queue=version.max_queue or settings.max_queue,
                    expected_workers=version.workers,
                )
                spec = PoolSpec(
                    model=name, version=n, version_id=vid, language=version.language,
                    script=str(d.script_path(version)), function=version.function,
                    workers=version.workers, preload=version.preload, slots=version.slots,
                    env=dict(model.env), connect=self.dispatcher.address,
                    log_json=self.json_logs,
                )
                self.dispatcher.add_pool(pool)
                self.pools[pool.key] = PoolProcess(spec, pool, self.dispatcher)
                pools[n] = pool
            routes[name] = model_routes(name, model, pools)
        return RoutingTable(routes)

    async def start(self) -> None:
        """Start every pool and wait (bounded) until each is up or has failed."""
        self.dispatcher = Dispatcher(f"ipc://{self.runtime_dir}/workers.sock")
        self.table = self._build()
        total = sum(p.pool.expected_workers for p in self.pools.values())
        settled = asyncio.Event()

        def on_change(pool: VersionPool) -> None:
            ready = sum(len(p.workers) for p in self.served)
            if self.progress is not None:
                self.progress(ready, total, pool)
            if all(len(p.workers) >= p.expected_workers or p.failure for p in self.served):
                settled.set()

        for process in self.pools.values():
            process.pool.on_change.append(on_change)
        await asyncio.gather(*(p.start() for p in self.pools.values()))
        try:
            await asyncio.wait_for(settled.wait(), self.deployment.gateway.startup_timeout_s)
        except asyncio.TimeoutError:
            log.warning("startup_incomplete", not_ready=[
                f"{p.model} v{p.version}" for p in self.served if not p.ready])
        for process in self.pools.values():
            process.pool.on_change.remove(on_change)

    async def stop(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.pools.values()))
        if self.dispatcher is not None:
            for process in self.pools.values():
                self.dispatcher.remove_pool(process.pool)
            self.dispatcher.close()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)

    def readiness(self) -> dict[str, dict[str, object]]:
        """Per version: ready or not, workers up, and why not when it cannot serve."""
        return {
            f"{p.model}/{p.version}": {
                "ready": p.ready, "workers_ready": len(p.workers),
                "workers": p.expected_workers, **({"reason": p.failure} if p.failure else {}),
            }
            for p in self.served
        }
