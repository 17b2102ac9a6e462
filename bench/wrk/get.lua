-- A plain GET of the URL given to wrk; only adds the RESULT line.
local lib = dofile(os.getenv("BENCH_LUA") .. "/lib.lua")

function setup(thread) lib.setup(thread) end

function done(summary, latency, requests) lib.report(summary, latency) end
