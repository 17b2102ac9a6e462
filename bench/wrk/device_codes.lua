-- Seeding, not measured: starts device authorizations and writes their device codes to
-- "$BENCH_CODES.<thread>" until the thread has its share of BENCH_WANT (counting what the
-- file already holds); after that it only asks /healthz.
local lib = dofile(os.getenv("BENCH_LUA") .. "/lib.lua")

function setup(thread) lib.setup(thread) end

local want, got, file = 0, 0, nil

function init(args)
  local threads = tonumber(os.getenv("BENCH_THREADS") or "1")
  want = math.ceil(tonumber(os.getenv("BENCH_WANT")) / threads)
  local path = os.getenv("BENCH_CODES") .. "." .. tid
  local existing = io.open(path, "r")
  if existing then
    for _ in existing:lines() do got = got + 1 end
    existing:close()
  end
  file = io.open(path, "a")
  file:setvbuf("line")
end

local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }

function request()
  if got < want then
    return wrk.format("POST", "/oauth/device_authorization", headers,
      "client_id=latchkey-cli&device_name=bench")
  end
  return wrk.format("GET", "/healthz")
end

function response(status, hdrs, body)
  if got < want and status == 200 then
    local code = body:match('"device_code":"([^"]+)"')
    if code then
      file:write(code, "\n")
      got = got + 1
    end
  end
end
