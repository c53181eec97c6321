-- wrk script for `bench/accept.py`: POST /v1/outbound-sms, a different recipient on every request.
--
-- Environment (set by accept.py):
--   BENCH_API_KEY, BENCH_CONNECTOR  the X-PolyAi-Auth-Token and X-TOKEN-ID headers (the baseline ignores them)
--   BENCH_SEND_SECONDS              stop sending new requests this many seconds after the thread starts, so
--                                   every request sent is answered before wrk's own -d deadline closes the
--                                   connections: then the server's row count must equal the 2xx count exactly
--   BENCH_RESULT_PREFIX             the line prefix of the JSON summary printed by done()
--
-- User numbers are +1415555XXXX, cycling over XXXX = 0100..9999 (all valid US numbers for libphonenumber; 00xx
-- are the sandbox's landlines, which the send gates refuse).

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("bench_timespec")

local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) / 1e9
end

local MESSAGE = "Hi Jane, your appointment is confirmed for tomorrow at 2pm. "
  .. "Reply to this message if you need to reschedule."
local FIRST_NUMBER = 100
local NUMBERS = 9900
local IDLE_MS = 3600 * 1000

wrk.method = "POST"
wrk.path = "/v1/outbound-sms"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-PolyAi-Auth-Token"] = os.getenv("BENCH_API_KEY") or "rk_bench_key_0123456789"
wrk.headers["X-TOKEN-ID"] = os.getenv("BENCH_CONNECTOR") or "conn_bench"

-- setup() and done() run in the main Lua state; everything else runs in each thread's own state.
local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  counter = thread_index * 7919 -- spread threads over the number space
  -- wrk calls request() once on the first thread before the run, to check the script: not a request sent.
  unsent = (thread_index == 0) and 1 or 0
  sent = 0
  answered = 0
  accepted = 0
  refused = 0
  started = now()
  send_seconds = tonumber(os.getenv("BENCH_SEND_SECONDS") or "") or 1e9
  first_sent = -1
  last_answer = -1
  stopped = false
end

-- Called before every request: after the send window, park the connection instead of sending.
function delay()
  if not stopped and now() - started >= send_seconds then
    stopped = true
  end
  if stopped then
    return IDLE_MS
  end
  return 0
end

function request()
  local number = FIRST_NUMBER + counter % NUMBERS
  counter = counter + 1
  if unsent > 0 then
    unsent = unsent - 1
  else
    sent = sent + 1
  end
  if first_sent < 0 and sent > 0 then
    first_sent = now()
  end
  local body = string.format('{"message":"%s","user_number":"+1415555%04d"}', MESSAGE, number)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  answered = answered + 1
  if status >= 200 and status < 300 then
    accepted = accepted + 1
  else
    refused = refused + 1
  end
  last_answer = now()
end

function done(summary, latency, requests)
  local total = { sent = 0, answered = 0, accepted = 0, refused = 0 }
  local first, last = math.huge, -math.huge
  for _, thread in ipairs(threads) do
    for key, _ in pairs(total) do
      total[key] = total[key] + thread:get(key)
    end
    local f, l = thread:get("first_sent"), thread:get("last_answer")
    if f >= 0 and f < first then
      first = f
    end
    if l >= 0 and l > last then
      last = l
    end
  end
  local window = 0
  if last > first then
    window = last - first
  end
  local e = summary.errors
  io.write(
    string.format(
      '%s{"sent":%d,"answered":%d,"accepted":%d,"refused":%d,"window_s":%.6f,'
        .. '"wrk_requests":%d,"wrk_duration_us":%d,"wrk_status_errors":%d,'
        .. '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,'
        .. '"p50_us":%.1f,"p90_us":%.1f,"p99_us":%.1f,"max_us":%.1f,"mean_us":%.1f}\n',
      os.getenv("BENCH_RESULT_PREFIX") or "BENCH_RESULT ",
      total.sent,
      total.answered,
      total.accepted,
      total.refused,
      window,
      summary.requests,
      summary.duration,
      e.status,
      e.connect,
      e.read,
      e.write,
      e.timeout,
      latency:percentile(50),
      latency:percentile(90),
      latency:percentile(99),
      latency.max,
      latency.mean
    )
  )
end
