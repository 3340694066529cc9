-- One wrk script for every HTTP workload of `python -m bench`, chosen by environment variables:
--
--   MODE=credit  DATA lines "member_id token": POST /v1/credits to a random member with that token
--   MODE=gift    DATA lines "member_id token": POST /v1/transfers from a random member (its own token)
--                to another random member of the list
--   MODE=get     DATA lines "path token":      GET path, the lines taken in turn
--   RUN          a prefix making every Idempotency-Key of this run unique (one key per request)
--   STATUS_CODES=1  also count responses by status (wrk then parses every response: a little more CPU)
--
-- done() prints one line "BENCH-JSON {...}" with the counts and latency percentiles (microseconds).

local mode = os.getenv("MODE")
local run = os.getenv("RUN") or "run"
local rows = {}
for line in io.lines(os.getenv("DATA")) do
  local fields = {}
  for field in string.gmatch(line, "%S+") do
    fields[#fields + 1] = field
  end
  if #fields > 0 then
    rows[#rows + 1] = fields
  end
end
if #rows == 0 or (mode == "gift" and #rows < 2) then
  error("DATA has too few lines for MODE " .. tostring(mode))
end

-- setup() runs in wrk's main Lua state; each thread gets its own state, where init() runs.
local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
  thread:set("tid", #threads)
end

local sent = 0
local cached = {}
statuses = {} -- global: done() collects it from each thread with thread:get

function init(args)
  math.randomseed(tid * 1000003 + os.time())
  sent = math.random(#rows) -- threads start at different rows
  if mode == "get" then
    for i, row in ipairs(rows) do
      cached[i] = wrk.format("GET", row[1], { ["Authorization"] = "Bearer " .. row[2] })
    end
  end
end

local function post(path, token, body)
  return wrk.format("POST", path, {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = run .. "-" .. tid .. "-" .. sent,
  }, body)
end

function request()
  sent = sent + 1
  if mode == "get" then
    return cached[(sent % #rows) + 1]
  elseif mode == "credit" then
    local row = rows[math.random(#rows)]
    return post("/v1/credits", row[2],
      '{"member_id":"' .. row[1] .. '","minutes":15,"service_date":"2026-11-01","description":"bench credit"}')
  elseif mode == "gift" then
    local from = math.random(#rows)
    local to = math.random(#rows - 1)
    if to >= from then
      to = to + 1
    end
    return post("/v1/transfers", rows[from][2],
      '{"from_member_id":"' .. rows[from][1] .. '","to_member_id":"' .. rows[to][1]
        .. '","minutes":15,"description":"bench gift"}')
  end
  error("unknown MODE " .. tostring(mode))
end

if os.getenv("STATUS_CODES") == "1" then
  function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    local seen = thread:get("statuses")
    if seen then
      for status, n in pairs(seen) do
        counts[status] = (counts[status] or 0) + n
      end
    end
  end
  local parts = {}
  for status, n in pairs(counts) do
    parts[#parts + 1] = string.format('"%d": %d', status, n)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests": %d, "duration_us": %d, "bytes": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"latency_us": {"min": %d, "mean": %.1f, "max": %d, "p50": %d, "p90": %d, "p99": %d, "p999": %d}, '
      .. '"statuses": {%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    table.concat(parts, ", ")))
end
