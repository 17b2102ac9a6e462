-- Shared by the bench/wrk/*.lua scripts: thread bookkeeping, a monotonic clock in
-- milliseconds (LuaJIT FFI), and the one-line RESULT report bench/run parses.
local M = {}

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")

-- CLOCK_MONOTONIC, in milliseconds (fractional).
function M.now_ms()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

M.threads = {}

-- Call from setup(thread): numbers the threads (the global `tid` of each thread's state,
-- 0-based) so that each can take its share of a file of tokens or codes.
function M.setup(thread)
  thread:set("tid", #M.threads)
  table.insert(M.threads, thread)
end

-- The lines of `path` that belong to thread `tid` of `nthreads` (round robin).
function M.share(path, tid, nthreads)
  local out, i = {}, 0
  for line in io.lines(path) do
    if line ~= "" then
      if i % nthreads == tid then out[#out + 1] = line end
      i = i + 1
    end
  end
  return out
end

-- Sums a global counter over the threads.
function M.sum(name)
  local n = 0
  for _, t in ipairs(M.threads) do n = n + (tonumber(t:get(name)) or 0) end
  return n
end

-- Prints the line bench/run parses. Latencies are wrk's (microseconds), printed in ms.
function M.report(summary, latency, extra)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d seconds=%.2f rps=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f " ..
    "non2xx=%d socket_errors=%d%s\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect + e.read + e.write + e.timeout, extra or ""))
end

return M
