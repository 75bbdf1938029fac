"""What a process on the pool socket can make the gateway do (issue 15, M1), with the real
dispatcher and real ZeroMQ sockets but no worker: only a pool's own workers join it, and a
timeout kills only a process that pool's supervisor started."""

import asyncio

import zmq

from gateway.serving.dispatcher import Dispatcher, VersionPool
from workers.wire import Ready, decode_gateway_frame, encode_frame


def pool(**options):
    return VersionPool(model="m", version=1, version_id="v1id", timeout_s=0.3, max_queue=8,
                       expected_workers=1, **options)


async def joined(served, address, pid, secret):
    """A DEALER that announces itself as a worker of ``served`` running as ``pid``."""
    context = zmq.Context.instance()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(address)
    sock.send(encode_frame(Ready("m", 1, "v1id", pid, 4, secret)))
    for _ in range(100):
        await asyncio.sleep(0.02)
        if served.workers:
            break
    return sock


async def test_a_process_without_the_pools_secret_is_refused(tmp_path):
    dispatcher = Dispatcher(f"ipc://{tmp_path}/w.sock")
    served = pool()
    dispatcher.add_pool(served)
    sock = await joined(served, dispatcher.address, 4242, "guessed")
    try:
        assert not served.workers
        assert sock.poll(2000)  # it is told to stop
        assert type(decode_gateway_frame(sock.recv())).__name__ == "Stop"
    finally:
        sock.close()
        dispatcher.close()


async def test_a_timeout_never_kills_a_process_the_supervisor_did_not_start(tmp_path):
    bystander = await asyncio.create_subprocess_exec("sleep", "30")
    dispatcher = Dispatcher(f"ipc://{tmp_path}/w.sock")
    served = pool()
    dispatcher.add_pool(served)
    sock = await joined(served, dispatcher.address, bystander.pid, served.secret)
    try:
        assert served.workers  # it knows the secret: it joins...
        future = dispatcher.submit(served, b'{"parameters": []}')
        try:
            await asyncio.wait_for(future, 5)
        except Exception as exc:  # ...and never answers: the call times out
            assert type(exc).__name__ == "Timeout"
        await asyncio.sleep(0.2)
        assert bystander.returncode is None, "the gateway killed a process it did not start"
    finally:
        bystander.kill()
        await bystander.wait()
        sock.close()
        dispatcher.close()
