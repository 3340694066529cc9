-- GET /v1/accounts/{id} over the accounts listed in ACCOUNTS, with TOKEN.
local accounts = {}
local token = os.getenv("TOKEN")
for id in string.gmatch(os.getenv("ACCOUNTS"), "[^,]+") do
  accounts[#accounts + 1] = id
end
local sent = 0
function request()
  sent = sent + 1
  return wrk.format("GET", "/v1/accounts/" .. accounts[(sent % #accounts) + 1], {["Authorization"] = "Bearer " .. token})
end

function done(summary, latency, requests)
  io.write(string.format("p50 %.2f ms, p99 %.2f ms, non-2xx %d\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.status))
end
