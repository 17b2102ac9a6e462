-- The same form POST on every request: BENCH_PATH, BENCH_BODY, and optionally BENCH_AUTH
-- (the whole Authorization header value).
local lib = dofile(os.getenv("BENCH_LUA") .. "/lib.lua")

wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH")
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end

function setup(thread) lib.setup(thread) end

function done(summary, latency, requests) lib.report(summary, latency) end
