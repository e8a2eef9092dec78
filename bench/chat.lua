-- wrk script: POST one small chat completion per request and count the answers by status.
--
-- Env: BENCH_PATH (default /v1/chat/completions), BENCH_MODEL, BENCH_KEY, BENCH_STREAM ("1": stream),
-- BENCH_UNIQUE (a token: every request asks something new, "<token> <n>", so a response cache misses).
-- done() prints one machine-readable line, "BENCH sent=N ok=N bad=N broken=N", which bench/loadgen.py
-- reads: wrk's own "Non-2xx or 3xx" counter lets 3xx pass, a stream that fails after its 200 status
-- carries its error in the body (so a 2xx stream counts as ok only if it ends with [DONE] and has no
-- error event), and wrk has no count of requests still in flight when the run ends, which the ledger
-- check needs (those requests reached the server too).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  sent, ok, bad, broken = 0, 0, 0, 0
  streaming = os.getenv("BENCH_STREAM") == "1"
  local stream = ""
  if streaming then
    stream = ', "stream": true'
  end
  unique = os.getenv("BENCH_UNIQUE") or ""
  path = os.getenv("BENCH_PATH") or "/v1/chat/completions"
  headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY"),
  }
  body_before = '{"model": "' .. os.getenv("BENCH_MODEL") .. '", "messages": [{"role": "user", "content": "'
  body_after = '"}]' .. stream .. '}'
  -- Built once per thread; request() only counts and hands it out (unless every request is new).
  prepared = wrk.format("POST", path, headers, body_before .. "hello" .. body_after)
end

function request()
  sent = sent + 1
  if unique ~= "" then
    return wrk.format("POST", path, headers, body_before .. unique .. " " .. sent .. body_after)
  end
  return prepared
end

local function complete(body)
  if streaming then
    return body:find("data: [DONE]", 1, true) ~= nil and body:find('"error":', 1, true) == nil
  end
  return body:find('"choices"', 1, true) ~= nil
end

function response(status, headers, body)
  if status < 200 or status >= 300 then
    bad = bad + 1
  elseif complete(body) then
    ok = ok + 1
  else
    broken = broken + 1
  end
end

function done(summary, latency, requests)
  local totals = {sent = 0, ok = 0, bad = 0, broken = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + thread:get(name)
    end
  end
  io.write(string.format("BENCH sent=%d ok=%d bad=%d broken=%d\n", totals.sent, totals.ok, totals.bad, totals.broken))
end
