-- Device-code polling at the interval (RFC 8628 §3.5), over many pending flows.
--
-- BENCH_CODES is a file of device codes (one per line), split between the threads. Each
-- thread polls its codes round robin and paces itself with wrk's delay() so that one code is
-- polled once per BENCH_PERIOD_MS (the server's interval plus a margin): request slots are
-- BENCH_PERIOD_MS / (codes of the thread) apart. A thread that falls behind never catches up
-- in a burst: polls only ever get further apart, as a well-behaved client's would.
-- Answers are counted: `pending` (authorization_pending, expected), `slow_down` (the client
-- polled too fast: should be 0) and `other`.
local lib = dofile(os.getenv("BENCH_LUA") .. "/lib.lua")

function setup(thread) lib.setup(thread) end

local codes, n, idx = {}, 0, 0
local gap, next_slot = 0, 0
pending, slow, other = 0, 0, 0

function init(args)
  local threads = tonumber(os.getenv("BENCH_THREADS") or "1")
  codes = lib.share(os.getenv("BENCH_CODES"), tid, threads)
  n = #codes
  gap = tonumber(os.getenv("BENCH_PERIOD_MS")) / math.max(n, 1)
  next_slot = lib.now_ms()
end

function delay()
  local now = lib.now_ms()
  local slot = next_slot
  if slot < now then slot = now end
  next_slot = slot + gap
  return math.floor(slot - now)
end

local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
local grant = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"

function request()
  idx = idx % n + 1
  return wrk.format("POST", "/oauth/token", headers,
    "grant_type=" .. grant .. "&client_id=latchkey-cli&device_code=" .. codes[idx])
end

function response(status, hdrs, body)
  if body:find("authorization_pending", 1, true) then
    pending = pending + 1
  elseif body:find("slow_down", 1, true) then
    slow = slow + 1
  else
    other = other + 1
    if not sample then sample = status .. " " .. body:sub(1, 200) end
  end
end

function done(summary, latency, requests)
  lib.report(summary, latency, string.format(" pending=%d slow_down=%d other=%d bad=%d",
    lib.sum("pending"), lib.sum("slow"), lib.sum("other"), lib.sum("slow") + lib.sum("other")))
  for _, t in ipairs(lib.threads) do
    local s = t:get("sample")
    if s then io.write("first unexpected answer: ", s, "\n") break end
  end
end
