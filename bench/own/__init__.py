"""``modelgate bench --url URL | -c CONFIG --model M ...``: load-tests a running deployment.

The scenarios of ``bench/scenarios/`` start their own contenders; this measures the user's own
gateway, as it runs, with wrk:

- :mod:`bench.own.target`: the gateway's address, the versions named, the token, and a check
  call that must answer 200; every problem is a :class:`~bench.own.target.BadInput` (exit 2).
- :mod:`bench.own.load`: one measurement window of wrk (``load.lua``) and the merge of several.
- :mod:`bench.own.gateway_view`: the gateway's ``/metrics`` before and after each window, so
  the report shows where the time went (in the model, or queueing and hopping to it).
- :mod:`bench.own.sweep`: windows until throughput is stable at each concurrency or rate,
  alternating between versions for an A/B.
- :mod:`bench.own.report`: the markdown table, the CSV, the plot and the verdict of an A/B.
- :mod:`bench.own.cli`: the options and ``main``.
"""
