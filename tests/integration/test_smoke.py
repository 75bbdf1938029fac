"""The shortest proof that the whole path works: HTTP -> gateway -> ZeroMQ -> worker -> back."""

from conftest import EXAMPLES, version


async def test_sum_of_parameters_through_a_real_pool(gateway_factory, http):
    gw = await gateway_factory({"models": {"sum": {
        "access": {"public": True},
        "versions": {1: version(EXAMPLES / "basics" / "basics.py", "add", workers=2)}}}})
    async with http.post(gw.model_url("sum"), json={"parameters": [1, 2, 3.5]}) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["result"] == 6.5
    assert body["release"]["model"] == "sum"
    assert body["release"]["model_version_number"] == 1
    assert resp.headers["X-Request-Id"] == body["request_id"]
