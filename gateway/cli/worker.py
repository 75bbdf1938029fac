"""``modelgate worker``: a remote pool, run on another host, that joins a gateway's version.

It runs the same supervisor as a local pool (:func:`workers.supervisor.run_supervisor`) in this
process, with the :class:`~workers.wire.PoolSpec` the gateway would send, so both compute the
same version id; its events are logged, since no gateway process reads them. This is the only
module of the gateway that imports more of :mod:`workers` than the wire protocol.
"""

from __future__ import annotations

import os
import sys

import msgspec
import zmq.auth

from gateway.config import ConfigError, load
from gateway.environments import build_all
from gateway.serving import worker_user
from gateway.serving.service import pool_spec
from gateway.snapshots import prepare
from workers.supervisor import StatusLog, configure_logging, run_supervisor


def run(config: str, model: str, version: int, connect: str, workers: int = 0,
        key: str | None = None, server_key: str | None = None,
        json_logs: bool | None = None) -> int:
    """Serve version ``version`` of ``model`` through the gateway at ``connect`` until SIGTERM;
    over TCP with this worker's secret certificate ``key`` and the gateway's public
    ``server_key``. Returns the exit status."""
    try:
        # the version's snapshot must be in this host's store (a shared state_dir); one taken
        # here of the same files has the same id, and so the same version id
        deployment, _ = prepare(load(config, check_secrets=False))
        environment = build_all(deployment).get((model, version))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    found = deployment.models.get(model)
    if found is None or version not in found.versions:
        print(f"{config}: no version {version} of model {model}", file=sys.stderr)
        return 1
    if json_logs is None:
        json_logs = not sys.stdout.isatty()
    spec = pool_spec(deployment, model, version, connect, json_logs, environment)
    curve: dict[str, str] = {}
    if connect.startswith("tcp://"):
        if not (key and server_key):
            print("over TCP a worker needs --key (its secret certificate) and --server-key "
                  "(the gateway's public certificate)", file=sys.stderr)
            return 1
        public, secret = zmq.auth.load_certificate(key)
        server, _ = zmq.auth.load_certificate(server_key)
        if secret is None:
            print(f"{key} holds no secret key", file=sys.stderr)
            return 1
        curve = {"curve_public_key": public.decode(), "curve_secret_key": secret.decode(),
                 "curve_server_key": server.decode()}
    spec = msgspec.structs.replace(spec, workers=workers or max(1, spec.workers), **curve)
    try:  # as root, the pool runs as gateway.worker_user, as a local pool does
        user = worker_user.resolve(deployment.gateway.worker_user)
        if user is not None:
            worker_user.check_access(user, [spec])
    except worker_user.WorkerUserError as exc:
        print(exc, file=sys.stderr)
        return 1
    # The same environment as a local pool's: the host's variables stay out, the model's `env`
    # is in (this process becomes the pool parent, and its workers are forked from it).
    clean = worker_user.worker_environment(spec.env)
    os.environ.clear()
    os.environ.update(clean if user is None else user.environment(clean))
    if user is not None:
        worker_user.become(user)
    configure_logging(json_logs, spec)
    return run_supervisor(spec, StatusLog())
