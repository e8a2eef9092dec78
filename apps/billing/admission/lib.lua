-- Prepended to every admission script (batching.Script): what they all need.
local WINDOW = 60000
local MAX_LEVEL = 4503599627370496 -- 2^52

-- ARGV's clock in ms, or Redis' own when it is blank: hosts with skewed clocks still share one time.
local function clock(given)
  local now = tonumber(given)
  if now then return now end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A GCRA level after ``now - since`` ms of draining at ``limit`` per ms.
local function drained(level, since, now, limit)
  if not level then return 0 end
  local elapsed = now - since
  if elapsed <= 0 then return level end
  return math.max(0, level - elapsed * limit)
end

