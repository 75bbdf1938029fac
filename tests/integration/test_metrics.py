"""Prometheus metrics at GET /metrics (SPEC §7), read with prometheus_client's own parser from a
real gateway: counts by status, latency and model-time histograms, ready workers, restarts of
killed workers and pool parents, in-flight calls and queue depth while calls are held, and no
request id or token in what is exported."""

import asyncio
import hashlib
import os
import signal

import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import TEST_MODELS, start_gateway, version

SCRIPT = TEST_MODELS / "observed.py"
TOKEN = "metrics-test-token-7f3a9c"
DEADLINE_S = 20.0

pytestmark = pytest.mark.timeout(90)


def public(*versions, **options):
    return {"access": {"public": True},
            "versions": {n: version(SCRIPT, f, **options) for n, f in enumerate(versions, 1)}}


@pytest.fixture(scope="module")
async def gw(tmp_path_factory):
    running = await start_gateway(tmp_path_factory.mktemp("metrics"), {
        "tokens": {"ops": {"sha256": hashlib.sha256(TOKEN.encode()).hexdigest(),
                           "admin": True}},  # sees every model's series (issue 15, M3)
        "models": {
            "calc": public("add", "boom"),
            "held": public("hold", slots=1),  # one call at the worker, the others queue
            "victim": public("whoami"),
            "secret": {"access": {"tokens": ["ops"]},
                       "versions": {1: version(SCRIPT, "add")}},
        },
    })
    yield running
    await running.stop()


class Scrape:
    """One read of /metrics: its text and every sample by name and labels."""

    def __init__(self, text):
        self.text = text
        self.samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def __call__(self, name, default=None, **labels):
        """The sample's value; a missing series fails the test unless ``default`` is given
        (so a renamed metric or label cannot pass as zero)."""
        value = self.samples.get((name, frozenset(labels.items())), default)
        if value is None:
            raise KeyError(f"no sample {name}{labels} in\n{self.text}")
        return value


async def scrape(http, gw):
    async with http.get(f"{gw.url}/metrics",
                        headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return Scrape(await resp.text())


async def until(http, gw, check, what):
    """Scrape until ``check(scrape)`` holds; fail with ``what`` and the last values at the
    deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while True:
        metrics = await scrape(http, gw)
        if check(metrics):
            return metrics
        assert loop.time() < deadline, f"{what}: never seen in\n{metrics.text}"
        await asyncio.sleep(0.05)


async def post(http, url, body, **kwargs):
    async with http.post(url, json=body, **kwargs) as resp:
        return resp.status, await resp.json()


async def test_calls_move_counts_by_status_and_both_histograms(gw, http):
    before = await scrape(http, gw)
    for _ in range(2):
        assert (await post(http, gw.model_url("calc", 1), {"data": {"a": 1, "b": 2,
                                                                     "nap": 0.05}}))[0] == 200
    assert (await post(http, gw.model_url("calc", 2), {"parameters": []}))[0] == 500
    after = await scrape(http, gw)

    def delta(name, **labels):  # a series may first appear with these calls
        return after(name, **labels) - before(name, default=0.0, **labels)

    v1, v2 = {"model": "calc", "version": "1"}, {"model": "calc", "version": "2"}
    assert delta("modelgate_requests_total", code="200", **v1) == 2
    assert delta("modelgate_requests_total", code="500", **v2) == 1
    assert after("modelgate_requests_total", default=0.0, code="500", **v1) == \
        before("modelgate_requests_total", default=0.0, code="500", **v1)
    assert delta("modelgate_request_duration_seconds_count", **v1) == 2
    assert delta("modelgate_request_duration_seconds_bucket", le="+Inf", **v1) == 2
    # the function slept 50 ms twice: model time says so, and the gateway's time includes it
    model_s = delta("modelgate_model_duration_seconds_sum", **v1)
    assert 0.1 <= model_s < 10
    assert delta("modelgate_request_duration_seconds_sum", **v1) >= model_s
    assert delta("modelgate_model_duration_seconds_bucket", le="0.025", **v1) == 0
    assert delta("modelgate_model_duration_seconds_count", **v1) == 2
    # a function that raised still ran: its time (a 50 ms nap, then the exception) is counted
    assert delta("modelgate_model_duration_seconds_count", **v2) == 1
    assert 0.05 <= delta("modelgate_model_duration_seconds_sum", **v2) < 10


async def test_a_call_whose_function_never_ran_is_counted_but_not_timed(gw, http):
    before = await scrape(http, gw)
    assert (await post(http, gw.model_url("calc", 1), {"parameters": [1, 2, 3, 4]}))[0] == 400
    assert (await post(http, gw.model_url("calc", 1), {"nothing": 1}))[0] == 400
    after = await scrape(http, gw)
    v1 = {"model": "calc", "version": "1"}
    assert after("modelgate_requests_total", code="400", **v1) == \
        before("modelgate_requests_total", default=0.0, code="400", **v1) + 2
    assert after("modelgate_model_duration_seconds_count", **v1) == \
        before("modelgate_model_duration_seconds_count", **v1)


async def test_calls_refused_before_the_pool_are_counted_and_unknown_names_are_not_labels(
        gw, http):
    before = await scrape(http, gw)
    status, _ = await post(http, gw.model_url("secret"), {"parameters": [1, 2]})
    assert status == 401
    status, _ = await post(http, gw.model_url("no-such-model-xq"), {"parameters": []})
    assert status == 404
    status, _ = await post(http, gw.model_url("calc", 99), {"parameters": []})
    assert status == 404
    after = await scrape(http, gw)
    secret = {"model": "secret", "version": "1"}
    assert after("modelgate_requests_total", code="401", **secret) == \
        before("modelgate_requests_total", default=0.0, code="401", **secret) + 1
    assert after("modelgate_request_duration_seconds_count", **secret) == \
        before("modelgate_request_duration_seconds_count", **secret)  # never reached the pool
    assert after("modelgate_unrouted_requests_total", code="404") == \
        before("modelgate_unrouted_requests_total", default=0.0, code="404") + 2
    assert "no-such-model-xq" not in after.text and 'version="99"' not in after.text


async def test_ready_and_expected_workers_per_version(gw, http):
    metrics = await scrape(http, gw)
    async with http.get(f"{gw.url}/readyz",
                        headers={"Authorization": f"Bearer {TOKEN}"}) as resp:  # all models
        readiness = (await resp.json())["versions"]
    assert len(readiness) == 5
    for key, state in readiness.items():
        model, number = key.split("/")
        labels = {"model": model, "version": number}
        assert metrics("modelgate_workers_ready", **labels) == state["workers_ready"] == 1
        assert metrics("modelgate_workers_expected", **labels) == state["workers"] == 1


async def test_in_flight_calls_and_queue_depth_while_calls_are_held(gw, http, exchange_dir):
    release = exchange_dir / "release"
    held = {"model": "held", "version": "1"}
    calls = [asyncio.create_task(post(http, gw.model_url("held"),
                                      {"parameters": [str(release)]}))
             for _ in range(3)]
    try:
        await until(http, gw, lambda m: m("modelgate_calls_in_flight", **held) == 1
                    and m("modelgate_queue_depth", **held) == 2, "1 call in flight, 2 queued")
    finally:
        release.touch()
    answers = await asyncio.wait_for(asyncio.gather(*calls), DEADLINE_S)
    assert [status for status, _ in answers] == [200] * 3
    await until(http, gw, lambda m: m("modelgate_calls_in_flight", **held) == 0
                and m("modelgate_queue_depth", **held) == 0, "nothing in flight or queued")


def parent_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


async def test_killed_workers_and_pool_parents_count_as_restarts(gw, http):
    victim = {"model": "victim", "version": "1"}
    before = await scrape(http, gw)
    status, answer = await post(http, gw.model_url("victim"), {"parameters": []})
    assert status == 200
    os.kill(answer["result"], signal.SIGKILL)
    restarts = before("modelgate_worker_restarts_total", **victim)
    await until(http, gw, lambda m: m("modelgate_worker_restarts_total", **victim) == restarts + 1
                and m("modelgate_workers_ready", **victim) == 1, "a worker restart")

    status, answer = await post(http, gw.model_url("victim"), {"parameters": []})
    assert status == 200
    os.kill(parent_of(answer["result"]), signal.SIGKILL)
    pools = before("modelgate_pool_restarts_total", **victim)
    after = await until(http, gw, lambda m: m("modelgate_pool_restarts_total", **victim)
                        == pools + 1 and m("modelgate_workers_ready", **victim) == 1,
                        "a pool restart")
    assert after("modelgate_worker_restarts_total", **victim) == restarts + 1
    assert (await post(http, gw.model_url("victim"), {"parameters": []}))[0] == 200


async def test_no_request_id_or_token_is_exported(gw, http):
    rid = "rid-that-must-not-be-a-label-5d1e"
    headers = {"X-Request-Id": rid, "Authorization": f"Bearer {TOKEN}"}
    assert (await post(http, gw.model_url("secret"), {"parameters": [1, 2]},
                       headers=headers))[0] == 200
    metrics = await scrape(http, gw)
    assert metrics("modelgate_requests_total", model="secret", version="1", code="200") >= 1
    assert rid not in metrics.text and TOKEN not in metrics.text
    allowed = {"model", "version", "code", "le"}
    for name, labels in metrics.samples:
        if name.startswith("modelgate_") and name != "modelgate_build_info":
            assert {k for k, _ in labels} <= allowed, name


async def test_openmetrics_is_served_when_asked_for(gw, http):
    async with http.get(f"{gw.url}/metrics",
                        headers={"Accept": "application/openmetrics-text"}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
        text = await resp.text()
    assert "# TYPE modelgate_requests counter" in text
    assert text.endswith("# EOF\n")


async def test_counts_survive_a_reload_that_replaces_a_versions_pool(gateway_factory, http):
    """New content for version 1 gets a new pool; its counters carry on, in one series."""
    config = {"models": {"calc": {**public("add"), "env": {"EDITION": "1"}}}}
    gw = await gateway_factory(config)
    for _ in range(2):
        assert (await post(http, gw.model_url("calc", 1), {"parameters": [1, 2]}))[0] == 200
    first = await scrape(http, gw)
    config["models"]["calc"]["env"] = {"EDITION": "2"}  # a new version id: a new pool
    config["models"]["calc"]["versions"][2] = version(SCRIPT, "whoami")
    gw.config_path.write_text(msgspec.json.encode(config).decode())  # JSON is YAML
    gw.process.send_signal(signal.SIGHUP)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while not gw.events("reloaded"):
        assert not gw.events("reload_failed"), gw.events("reload_failed")
        assert loop.time() < deadline, "no reload"
        await asyncio.sleep(0.05)
    assert (await post(http, gw.model_url("calc", 1), {"parameters": [1, 2]}))[0] == 200
    after = await until(http, gw, lambda m: m("modelgate_workers_ready", model="calc",
                                              version="2") == 1, "version 2 served")
    v1 = {"model": "calc", "version": "1"}
    assert first("modelgate_requests_total", code="200", **v1) == 2
    assert after("modelgate_requests_total", code="200", **v1) == 3
    assert after("modelgate_request_duration_seconds_count", **v1) == 3
    for line in ('modelgate_requests_total{code="200",model="calc",version="1"}',
                 'modelgate_workers_ready{model="calc",version="1"}'):
        assert after.text.count(line) == 1, after.text
