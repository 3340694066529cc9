-- One wrk script for every HTTP workload of `python -m bench`, chosen by environment variables:
--
--   MODE=credit  DATA lines "member_id token": POST /v1/credits to a random member with that token
--   MODE=gift    DATA lines "member_id token": POST /v1/transfers from a random member (its own token)
--                to another random member of the list
--   MODE=get     DATA lines "path token":      GET path, the lines taken in turn (token "-": a public
--                path, asked without an Authorization header)
--   MODE=flow    DATA lines "resident_id volunteer_id token": service request flows, each
--                ask (own hours) -> assign -> check-in -> report -> confirm, by a coordinator's token;
--                each answer names the request and its status, which says its next step; a
--                connection free of a next step asks for a new service
--   MODE=batch   DATA lines "slug member_id,member_id,... token": POST /v1/credit-batches crediting
--                every listed volunteer 15 minutes (an activity), a random line each time
--   MODE=ceiling DATA lines "path -":           POST path with {"minutes":15} (bench/ceiling.py's one INSERT)
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
if #rows == 0 or (mode == "gift" and #rows < 2) or (mode == "flow" and #rows[1] < 3) then
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
flows = 0 -- global: service request flows completed (MODE=flow), collected likewise
local next_steps = {} -- MODE=flow: {path, body} of requests whose previous step has been answered
local batches = {} -- MODE=batch: each line's body

function init(args)
  math.randomseed(tid * 1000003 + os.time())
  sent = math.random(#rows) -- threads start at different rows
  if mode == "get" then
    for i, row in ipairs(rows) do
      local headers = {}
      if row[2] ~= "-" then
        headers["Authorization"] = "Bearer " .. row[2]
      end
      cached[i] = wrk.format("GET", row[1], headers)
    end
  elseif mode == "ceiling" then
    cached[1] = wrk.format("POST", rows[1][1], { ["Content-Type"] = "application/json" }, '{"minutes":15}')
  elseif mode == "batch" then
    for i, row in ipairs(rows) do
      local credits = {}
      for member in string.gmatch(row[2], "[^,]+") do
        credits[#credits + 1] = '{"member_id":"' .. member .. '","minutes":15}'
      end
      batches[i] = '{"community":"' .. row[1] .. '","service_date":"2026-11-01","description":"bench activity",'
        .. '"credits":[' .. table.concat(credits, ",") .. "]}"
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
  elseif mode == "ceiling" then
    return cached[1]
  elseif mode == "credit" then
    local row = rows[math.random(#rows)]
    return post("/v1/credits", row[2],
      '{"member_id":"' .. row[1] .. '","minutes":15,"service_date":"2026-11-01","description":"bench credit"}')
  elseif mode == "flow" then
    local step = table.remove(next_steps, 1)
    if step then
      return post(step[1], rows[1][3], step[2])
    end
    local row = rows[math.random(#rows)]
    -- Tomorrow, in UTC: within the 7 days back to 366 ahead a request may be for.
    local at = os.date("!%Y-%m-%dT09:00:00Z", os.time() + 86400)
    return post("/v1/service-requests", row[3],
      '{"member_id":"' .. row[1] .. '","service_type":"meals","minutes":60,"scheduled_at":"' .. at
        .. '","funding":"own","description":"bench"}')
  elseif mode == "batch" then
    local i = math.random(#rows)
    return post("/v1/credit-batches", rows[i][3], batches[i])
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

-- MODE=flow: the next step of the request an answer names, from the status it is in now.
local providers = {}
local function follow(body)
  local id = string.match(body, '"id":"([%x%-]+)"')
  local status = string.match(body, '"status":"([%w_]+)"')
  if not id or not status then
    return
  end
  local path = "/v1/service-requests/" .. id
  if status == "open" then
    local member = string.match(body, '"member_id":"([%x%-]+)"')
    next_steps[#next_steps + 1] = { path .. "/assign", '{"provider_member_id":"' .. providers[member] .. '"}' }
  elseif status == "assigned" then
    next_steps[#next_steps + 1] = { path .. "/check-in", "{}" }
  elseif status == "in_progress" then
    next_steps[#next_steps + 1] = { path .. "/report", '{"minutes":60}' }
  elseif status == "reported" then
    next_steps[#next_steps + 1] = { path .. "/confirm", '{"rating":5,"comment":"bench"}' }
  elseif status == "completed" then
    flows = flows + 1
  end
end

if mode == "flow" then
  for _, row in ipairs(rows) do
    providers[row[1]] = row[2]
  end
  function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
    if status < 300 then
      follow(body)
    end
  end
elseif os.getenv("STATUS_CODES") == "1" then
  function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local counts = {}
  local completed = 0
  for _, thread in ipairs(threads) do
    completed = completed + (thread:get("flows") or 0)
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
      .. '"statuses": {%s}, "flows": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    table.concat(parts, ", "), completed))
end
