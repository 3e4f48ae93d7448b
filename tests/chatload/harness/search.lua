-- wrk script: server-side full-text search in the joined rooms (Matrix POST /search), rotating tokens.
-- env: TOKENS_FILE, SEARCH_TERM (default lorem), SEARCH_PATH, SEARCH_BODY (Matrix defaults),
--      SEARCH_METHOD (default POST; PlexiChat: GET with the term in SEARCH_PATH, no body)
-- (PlexiChat's copy of the peers' harness script: the method and {term} in the path are the
-- changes.)
local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE") or (os.getenv("PEER_DIR") .. "/bench/tokens.txt")) do
  if #line > 0 then tokens[#tokens + 1] = line end
end
local term = os.getenv("SEARCH_TERM") or "lorem"
local function lit(s) return (s:gsub("%%", "%%%%")) end
local method = os.getenv("SEARCH_METHOD") or "POST"
local path = (os.getenv("SEARCH_PATH") or "/_matrix/client/v3/search"):gsub("{term}", lit(term))
local body = (os.getenv("SEARCH_BODY") or '{"search_categories":{"room_events":{"search_term":"{term}","order_by":"recent","filter":{"limit":10}}}}'):gsub("{term}", term)
local counter = 0
function request()
  counter = counter + 1
  local tok = "Bearer " .. tokens[1 + (counter % #tokens)]
  if method == "GET" then return wrk.format("GET", path, {["Authorization"] = tok}) end
  return wrk.format(method, path, {["Authorization"] = tok, ["Content-Type"] = "application/json"}, body)
end
function done(summary, latency, requests)
  io.write(string.format("RESULT rps=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f requests=%d non2xx=%d socket_errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
