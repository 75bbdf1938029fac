"""Remote worker pools: a CURVE-secured TCP ROUTER socket, and the ZAP handler guarding it.

Over TCP both ends authenticate and encrypt with ZeroMQ CURVE. ZeroMQ asks a ZAP handler (RFC
27) about every new connection; ours runs on the event loop and lets in only the public keys
found in ``gateway.workers_curve.authorized_keys`` (ZeroMQ certificate files), logging every
refusal. Local pools stay on ``ipc://`` and need no keys.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog
import zmq
import zmq.auth

from gateway.config import CurveSettings, Deployment, secret_env
from gateway.serving.dispatcher import Dispatcher

log = structlog.get_logger("modelgate.remote")

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
ZAP_DOMAIN = b"modelgate-workers"


def gateway_keys(curve: CurveSettings, base_dir: Path) -> tuple[bytes, bytes]:
    """The gateway's (public, secret) Z85 key pair, from its certificate file or the env."""
    if curve.secret_key_file is not None:
        public, secret = zmq.auth.load_certificate(base_dir / curve.secret_key_file)
        if secret is None:
            raise ValueError(f"{curve.secret_key_file} holds no secret key")
        return public, secret
    secret = (secret_env(curve.secret_key_env or "") or "").strip().encode()
    return zmq.curve_public(secret), secret


def authorized_keys(curve: CurveSettings, base_dir: Path) -> set[bytes]:
    return set(zmq.auth.load_certificates(base_dir / curve.authorized_keys))


def key_models(curve: CurveSettings, base_dir: Path) -> dict[bytes, frozenset[str]]:
    """Public key -> the models it may serve, for the keys ``key_models`` names (a missing
    key file ties nothing: that key is not authorized either)."""
    tied = {}
    for name, models in curve.key_models.items():
        path = base_dir / curve.authorized_keys / f"{name}.key"
        if path.is_file():
            public, _ = zmq.auth.load_certificate(path)
            tied[public] = frozenset(models)
    return tied


class ZapHandler:
    """Answers ZeroMQ's authentication requests: CURVE with a known public key, or no."""

    def __init__(self, context: zmq.Context, allowed: set[bytes]) -> None:  # type: ignore[type-arg]
        self._allowed = allowed
        self._socket = context.socket(zmq.REP)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.bind(ZAP_ENDPOINT)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._socket.FD, self._answer)

    def _answer(self) -> None:
        while self._socket.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            request = self._socket.recv_multipart()
            version, request_id, domain, address, _identity, mechanism = request[:6]
            key = request[6] if len(request) > 6 else b""
            z85 = zmq.utils.z85.encode(key) if len(key) == 32 else b""
            allowed = mechanism == b"CURVE" and domain == ZAP_DOMAIN and z85 in self._allowed
            if not allowed:
                log.warning("worker_refused", address=address.decode(errors="replace"),
                            mechanism=mechanism.decode(errors="replace"),
                            public_key=z85.decode(), reason="unknown key")
            status, text = (b"200", b"OK") if allowed else (b"400", b"unknown key")
            self._socket.send_multipart([version, request_id, status, text, z85, b""])

    def close(self) -> None:
        self._loop.remove_reader(self._socket.FD)
        self._socket.close(0)


class RemoteListener:
    """Lets authenticated remote workers join pools through ``gateway.workers_listen``."""

    def __init__(self, dispatcher: Dispatcher, deployment: Deployment) -> None:
        settings = deployment.gateway
        assert settings.workers_listen is not None and settings.workers_curve is not None
        public, secret = gateway_keys(settings.workers_curve, deployment.base_dir)
        self.zap = ZapHandler(dispatcher.context,
                              authorized_keys(settings.workers_curve, deployment.base_dir))
        socket = dispatcher.router()
        socket.curve_server = True
        socket.curve_publickey = public
        socket.curve_secretkey = secret
        socket.zap_domain = ZAP_DOMAIN
        socket.bind(settings.workers_listen)
        dispatcher.key_models = key_models(settings.workers_curve, deployment.base_dir)
        dispatcher.attach(socket)
        log.info("remote_workers_listen", address=settings.workers_listen,
                 server_key=public.decode())
