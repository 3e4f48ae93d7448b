-- wrk script: send chat messages into one room, rotating over sender tokens (tokens 2..N; token 1 is
-- reserved for the reader/long-poller). Unique transaction id per request.
-- env (defaults = Matrix client-server API, so the same script can be pointed at another server):
--   ROOM_ID      room id, raw (URL-encoded here)
--   TOKENS_FILE  one bearer token per line            (default $PEER_DIR/bench/tokens.txt)
--   SEND_METHOD  default PUT
--   SEND_PATH    default /_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}
--   SEND_BODY    default {"msgtype":"m.text","body":"benchmark message {n} lorem ipsum dolor sit amet"}
--   IDEMPOTENCY_HEADER  if set, also sends the transaction id in this header (PlexiChat:
--                       Idempotency-Key), as a client retrying safely would
-- (PlexiChat's copy of the peers' harness script: the header is the one change.)
local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE") or (os.getenv("PEER_DIR") .. "/bench/tokens.txt")) do
  if #line > 0 then tokens[#tokens + 1] = line end
end
local function enc(s) return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end)) end
-- escape a gsub replacement string
local function lit(s) return (s:gsub("%%", "%%%%")) end
local room = lit(enc(os.getenv("ROOM_ID") or ""))
local method = os.getenv("SEND_METHOD") or "PUT"
local path_t = os.getenv("SEND_PATH") or "/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}"
local body_t = os.getenv("SEND_BODY") or '{"msgtype":"m.text","body":"benchmark message {n} lorem ipsum dolor sit amet"}'
local idem = os.getenv("IDEMPOTENCY_HEADER")
local counter, tid = 0, 0
function setup(thread) tid = tid + 1; thread:set("tid", tid) end
function init(args) math.randomseed(os.time() + (tid or 0) * 7919); prefix = tostring(math.random(1, 1e9)) end
function request()
  counter = counter + 1
  local tok = tokens[2 + (counter % math.max(1, #tokens - 1))] or tokens[1]
  local txn = "w" .. prefix .. "_" .. tid .. "_" .. counter
  local path = path_t:gsub("{room}", room):gsub("{txn}", lit(txn))
  local body = body_t:gsub("{n}", tostring(counter)):gsub("{txn}", lit(txn))
  local headers = {["Authorization"] = "Bearer " .. tok, ["Content-Type"] = "application/json"}
  if idem then headers[idem] = txn end
  return wrk.format(method, path, headers, body)
end
function done(summary, latency, requests)
  io.write(string.format("RESULT rps=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f requests=%d non2xx=%d socket_errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
