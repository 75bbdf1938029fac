"""Which frames ask a worker to stay awake (gateway.busy_poll_us), with the real dispatcher and
a real DEALER standing in for the worker: only a call that is the gateway's only one in flight,
and the count of calls in flight comes back to zero after answers, timeouts and lost workers."""

import asyncio

import pytest
import zmq

from gateway.errors import Timeout, WorkerLost
from gateway.serving.dispatcher import Dispatcher, VersionPool
from workers.wire import Ready, Replies, Reply, decode_gateway_frame, encode_frame


async def worker(dispatcher, served, pid=4242):
    """A DEALER joined to ``served`` as a worker holding up to 8 calls."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(dispatcher.address)
    sock.send(encode_frame(Ready("m", 1, "v1id", pid, 8, served.secret)))
    for _ in range(200):
        await asyncio.sleep(0.01)
        if served.workers:
            return sock
    raise AssertionError("the worker did not join")


async def received(sock):
    """The next Calls frame: (call ids, awake_us)."""
    for _ in range(500):
        try:
            frame = decode_gateway_frame(sock.recv(zmq.NOBLOCK))
            return [call.id for call in frame.calls], frame.awake_us
        except zmq.Again:
            await asyncio.sleep(0.01)
    raise AssertionError("no frame came")


async def answer(sock, ids):
    sock.send(encode_frame(Replies([Reply(i, 0.1, b"1") for i in ids])))


def pool(timeout_s=30.0):
    return VersionPool(model="m", version=1, version_id="v1id", timeout_s=timeout_s,
                       max_queue=8, expected_workers=1)


async def test_only_a_call_alone_in_the_gateway_asks_the_worker_to_stay_awake(tmp_path):
    dispatcher = Dispatcher(f"ipc://{tmp_path}/w.sock")
    dispatcher.busy_poll_us = 700
    served = pool()
    dispatcher.add_pool(served)
    sock = await worker(dispatcher, served)
    try:
        first = dispatcher.submit(served, b"{}")
        assert await received(sock) == ([1], 700)
        second = dispatcher.submit(served, b"{}")  # the first is still in flight
        assert await received(sock) == ([2], 0)
        await answer(sock, [1, 2])
        await asyncio.gather(first, second)
        third = dispatcher.submit(served, b"{}")  # alone again
        assert await received(sock) == ([3], 700)
        await answer(sock, [3])
        await third
        dispatcher.busy_poll_us = 0  # turned off (a reload does this)
        fourth = dispatcher.submit(served, b"{}")
        assert await received(sock) == ([4], 0)
        await answer(sock, [4])
        await fourth
    finally:
        sock.close()
        dispatcher.close()


async def test_calls_that_time_out_or_lose_their_worker_no_longer_count_as_load(tmp_path):
    dispatcher = Dispatcher(f"ipc://{tmp_path}/w.sock")
    dispatcher.busy_poll_us = 700
    served = pool(timeout_s=0.2)
    dispatcher.add_pool(served)
    sock = await worker(dispatcher, served)
    other = third = None
    try:
        timed_out = dispatcher.submit(served, b"{}")  # never answered: it times out
        await received(sock)
        with pytest.raises(Timeout):
            await timed_out
        other = await worker(dispatcher, served, pid=4343)
        lost = dispatcher.submit(served, b"{}")
        assert (await received(other))[1] == 700  # the timed-out call is not counted
        dispatcher.worker_exited(served, 4343, "it died")
        with pytest.raises(WorkerLost):
            await lost
        third = await worker(dispatcher, served, pid=4444)
        alone = dispatcher.submit(served, b"{}")
        ids, awake_us = await received(third)
        assert awake_us == 700  # neither is the lost worker's call
        await answer(third, ids)
        await alone
    finally:
        for s in (sock, other, third):
            if s is not None:
                s.close()
        dispatcher.close()
