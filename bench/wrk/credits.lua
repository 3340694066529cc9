-- POST /v1/credits with a fresh Idempotency-Key per request, spread over the members listed in
-- the MEMBERS environment variable (comma-separated ids). TOKEN is a coordinator's or admin's token.
local counter = 0
local members = {}
local token = os.getenv("TOKEN")
for id in string.gmatch(os.getenv("MEMBERS"), "[^,]+") do
  members[#members + 1] = id
end

function setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
end

local sent = 0
function request()
  sent = sent + 1
  local member = members[(sent % #members) + 1]
  local body = '{"member_id":"' .. member .. '","minutes":15,"service_date":"2026-11-01","description":"bench"}'
  local headers = {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = "bench-" .. tostring(thread_id) .. "-" .. tostring(sent) .. "-" .. tostring(math.random(1e9)),
  }
  return wrk.format("POST", "/v1/credits", headers, body)
end

function done(summary, latency, requests)
  io.write(string.format("p50 %.2f ms, p99 %.2f ms, non-2xx %d\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.status))
end
