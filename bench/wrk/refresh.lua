-- Refresh-token rotation. Every request spends a refresh token that was never used before.
--
-- BENCH_TOKENS is a file of fresh refresh tokens, one per line, one per session (bench/run
-- makes them with password-grant logins). Each thread takes its share into a queue; every
-- request takes the head of the queue, and every 200 answer puts the rotated successor at the
-- tail. The server rotates on every use and treats a second use as theft, so a token is never
-- sent twice: a failed request loses its session's chain (counted as `lost`), and if the
-- queue ever runs dry the request is sent with a dummy token and counted as `starved` (both
-- should be 0; bench/run checks that every request answered 200).
local lib = dofile(os.getenv("BENCH_LUA") .. "/lib.lua")

function setup(thread) lib.setup(thread) end

local queue, head, tail = {}, 1, 0
lost, starved, rotated = 0, 0, 0

function init(args)
  local n = tonumber(os.getenv("BENCH_THREADS") or "1")
  for _, t in ipairs(lib.share(os.getenv("BENCH_TOKENS"), tid, n)) do
    tail = tail + 1
    queue[tail] = t
  end
end

local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }

function request()
  local token
  if head <= tail then
    token = queue[head]
    queue[head] = nil
    head = head + 1
  else
    starved = starved + 1
    token = "lkr_starved"
  end
  return wrk.format("POST", "/oauth/token", headers,
    "grant_type=refresh_token&client_id=latchkey-cli&refresh_token=" .. token)
end

function response(status, hdrs, body)
  local next_token = status == 200 and body:match('"refresh_token":"([^"]+)"')
  if next_token then
    tail = tail + 1
    queue[tail] = next_token
    rotated = rotated + 1
  else
    lost = lost + 1
  end
end

function done(summary, latency, requests)
  lib.report(summary, latency, string.format(" rotated=%d lost=%d starved=%d",
    lib.sum("rotated"), lib.sum("lost"), lib.sum("starved")))
end
