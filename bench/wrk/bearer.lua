-- A GET with `Authorization: Bearer $BENCH_TOKEN` (one access token, reused).
local lib = dofile(os.getenv("BENCH_LUA") .. "/lib.lua")

wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")

function setup(thread) lib.setup(thread) end

function done(summary, latency, requests) lib.report(summary, latency) end
