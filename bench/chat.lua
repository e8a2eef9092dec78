-- wrk script: POST one small chat completion per request and count the answers by status.
--
-- Env: BENCH_PATH (default /v1/chat/completions), BENCH_MODEL, BENCH_KEY, BENCH_STREAM ("1": stream).
-- done() prints one machine-readable line, "BENCH sent=N ok=N bad=N", which bench/loadgen.py reads:
-- wrk's own "Non-2xx or 3xx" counter lets 3xx pass, and wrk has no count of requests still in flight
-- when the run ends, which the ledger check needs (those requests reached the server too).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  sent, ok, bad = 0, 0, 0
  local stream = ""
  if os.getenv("BENCH_STREAM") == "1" then
    stream = ', "stream": true'
  end
  local body = '{"model": "' .. os.getenv("BENCH_MODEL") .. '", '
    .. '"messages": [{"role": "user", "content": "hello"}]' .. stream .. '}'
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY"),
  }
  -- Built once per thread; request() only counts and hands it out.
  prepared = wrk.format("POST", os.getenv("BENCH_PATH") or "/v1/chat/completions", headers, body)
end

function request()
  sent = sent + 1
  return prepared
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local total_sent, total_ok, total_bad = 0, 0, 0
  for _, thread in ipairs(threads) do
    total_sent = total_sent + thread:get("sent")
    total_ok = total_ok + thread:get("ok")
    total_bad = total_bad + thread:get("bad")
  end
  io.write(string.format("BENCH sent=%d ok=%d bad=%d\n", total_sent, total_ok, total_bad))
end
