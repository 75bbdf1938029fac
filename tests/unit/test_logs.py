"""The request log: every line arrives, in structlog's JSON shape, however many are written."""

import io

import msgspec

from gateway.logs import BufferedLines, RequestLog


def test_request_lines_are_all_written_in_the_json_shape():
    raw = io.BytesIO()
    sink = BufferedLines(raw)
    log = RequestLog(sink)
    for i in range(3000):  # well past the 64 KiB buffer: it drains itself
        log.info("request", request_id=f"r{i}", model="m", version=1, status=200, ms=0.1)
    assert raw.getvalue()  # drained without waiting for the periodic flush
    sink.drain()
    lines = raw.getvalue().splitlines()
    assert len(lines) == 3000
    first = msgspec.json.decode(lines[0])
    assert first["event"] == "request" and first["level"] == "info"
    assert first["request_id"] == "r0" and first["status"] == 200
    assert first["timestamp"].endswith("Z") and "T" in first["timestamp"]
