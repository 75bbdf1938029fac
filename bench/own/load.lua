-- wrk script of `modelgate bench --url/-c`: POSTs the body in $BENCH_BODY_FILE (with a bearer
-- token from $BENCH_TOKEN), counts answers by HTTP status, optionally paces requests to hold
-- $BENCH_RATE requests/s per wrk thread, and prints parseable lines at the end:
--   BENCH requests=N duration_us=N connect=N read=N write=N timeout=N mean_us=F max_us=N
--   BENCH_STATUS 200=N 503=N ...
--   BENCH_QUANTILES p:us p:us ...   (the latency quantile function, for merging windows)
wrk.method = "POST"
local file = io.open(os.getenv("BENCH_BODY_FILE"), "rb")
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

statuses = {}  -- per thread; a global, so that done() can read it with thread:get()
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

local rate = tonumber(os.getenv("BENCH_RATE") or "")
if rate and rate > 0 then
  -- Requests leave on a fixed schedule (t0, t0 + 1/rate, ...): wrk asks delay() before each
  -- one. A connection still waiting for its answer cannot send, so the rate is held only while
  -- enough connections are free; the report shows the rate reached.
  local ffi = require("ffi")
  ffi.cdef[[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clock, bench_timespec *now);
  ]]
  local now = ffi.new("bench_timespec")
  local function now_ms()
    ffi.C.clock_gettime(1, now)  -- CLOCK_MONOTONIC
    return tonumber(now.tv_sec) * 1000 + tonumber(now.tv_nsec) / 1e6
  end
  local interval_ms = 1000 / rate
  local next_ms = nil
  function delay()
    local t = now_ms()
    if next_ms == nil then next_ms = t end
    local wait = next_ms - t
    next_ms = next_ms + interval_ms
    if wait < 0 then return 0 end
    return wait
  end
end

local function quantiles(latency)
  local points = {}
  local p = 0.5
  while p <= 98.5 do
    table.insert(points, p)
    p = p + 0.5
  end
  for k = 986, 999 do table.insert(points, k / 10) end
  table.insert(points, 99.95)
  table.insert(points, 99.99)
  local parts = {}
  for _, q in ipairs(points) do
    table.insert(parts, string.format("%g:%d", q, latency:percentile(q)))
  end
  return table.concat(parts, " ")
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d connect=%d read=%d write=%d timeout=%d mean_us=%.1f " ..
    "max_us=%d\n", summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout,
    latency.mean, latency.max))
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(counts) do table.insert(parts, status .. "=" .. n) end
  io.write("BENCH_STATUS " .. table.concat(parts, " ") .. "\n")
  if summary.requests > 0 then io.write("BENCH_QUANTILES " .. quantiles(latency) .. "\n") end
end
