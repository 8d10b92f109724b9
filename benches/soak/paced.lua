-- wrk script for benches/soak.sh: POST the AdmissionReview in the file given after `--`, with
--   args[2]  delay in milliseconds before each request on a connection (0: as fast as it can)
--   args[3]  every Nth request asks for `Connection: close`, so that wrk reconnects and the
--            new connection's TLS handshake gets whatever certificate is being served now
--   args[4]  a string every answer's body must contain (the expected verdict)
-- and print one machine-readable RESULT line: requests, transport/status errors, answers with
-- the wrong body, and latency percentiles in microseconds.
--
-- wrk has no rate control (wrk2 is not packaged); a fixed per-connection delay with C
-- connections gives about C * 1000 / (delay + latency) requests per second, a closed loop.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

init = function(args)
  local f = assert(io.open(args[1], "rb"))
  local body = f:read("*a")
  f:close()
  pause = tonumber(args[2] or "0")
  close_every = tonumber(args[3] or "0")
  expect = args[4] or ""
  keep = wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
  closing = wrk.format("POST", nil,
    {["Content-Type"] = "application/json", ["Connection"] = "close"}, body)
  sent = 0
  bad = 0
end

request = function()
  sent = sent + 1
  if close_every > 0 and sent % close_every == 0 then
    return closing
  end
  return keep
end

delay = function()
  return pause
end

response = function(status, headers, body)
  if status ~= 200 or (expect ~= "" and not string.find(body, expect, 1, true)) then
    bad = bad + 1
  end
end

done = function(summary, latency, requests)
  local wrong = 0
  for _, t in ipairs(threads) do
    wrong = wrong + (t:get("bad") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d errors=%d connect=%d read=%d write=%d status=%d timeout=%d wrong=%d duration_us=%d p50=%d p99=%d p999=%d max=%d\n",
    summary.requests, e.connect + e.read + e.write + e.status + e.timeout,
    e.connect, e.read, e.write, e.status, e.timeout, wrong, summary.duration,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
