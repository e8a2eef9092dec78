-- Settlement of one admitted request: slots freed, unused tokens given back (or extra charged), the
-- budget reservation turned into spend. redis_backend.py documents the keys. Modes:
--   first  the ticket's own settlement (it runs once because its ticket settles once);
--   once   a settlement that never reached Redis (or a cost spent in the in-process fallback while
--          Redis was away), sent later: applied at most once per request id (the marker key);
--   retry  a settlement sent again after a failure that leaves unknown whether it was applied (a
--          timeout): at most once too, and a reservation found gone means the ledger must decide.
-- A cost is added to a period's spend unless that spend was rebuilt from the ledger after the cost
-- was spent: the ledger had it then (its row is written as the request ends).
--
-- KEYS, four per subject: rate hash, slots zset, budget hash, budget leases zset; then the marker.
-- ARGV: now ms ('' = Redis' clock), request id, mode, budget idle ms, marker ms, when the cost was
--       spent (ms, '' = now), then one per subject: 'tpm,token excess,tokens level after admission,
--       admission ms,slot,cost units': token excess scaled (> 0: reserved beyond use), slot '1' or
--       blank, a blank tpm or cost: no such limit or budget.

local now = clock(ARGV[1])
local id, mode, idle, marker_ms = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local spent_at = tonumber(ARGV[6]) or now
local count = (#KEYS - 1) / 4
local function key(i, j) return KEYS[4 * (i - 1) + j] end

if mode ~= 'first' and not redis.call('set', KEYS[#KEYS], '1', 'NX', 'PX', marker_ms) then return 0 end

for i = 1, count do
  local tpm_text, excess_text, level_after, admitted, slot, cost =
    string.match(ARGV[6 + i], '^([^,]*),([^,]*),([^,]*),([^,]*),([^,]*),([^,]*)$')
  local tpm, excess = tonumber(tpm_text), tonumber(excess_text)
  if tpm and excess ~= 0 then
    local r = redis.call('hmget', key(i, 1), 'tl', 'tt')
    local level = drained(tonumber(r[1]), tonumber(r[2]), now, tpm)
    if excess > 0 then
      -- Only what is still in the bucket of this request's tokens goes back (rates.refund).
      local left = tonumber(level_after) - math.max(0, now - tonumber(admitted)) * tpm
      level = math.max(0, level - math.max(0, math.min(excess, left)))
    else
      level = math.min(MAX_LEVEL, level - excess)
    end
    redis.call('hset', key(i, 1), 'tl', level, 'tt', now)
    local drain = math.ceil(level / tpm) + WINDOW
    if redis.call('pttl', key(i, 1)) < drain then redis.call('pexpire', key(i, 1), drain) end
  end
  if slot == '1' then redis.call('zrem', key(i, 2), id) end
  if cost ~= '' then
    local budget = key(i, 3)
    local amount = redis.call('hget', budget, 'r:' .. id)
    if amount then
      redis.call('hdel', budget, 'r:' .. id)
      if amount ~= '0' then redis.call('hincrby', budget, 'reserved', '-' .. amount) end
      redis.call('zrem', key(i, 4), id)
    end
    local head = redis.call('hmget', budget, 'spent', 'seeded')
    if head[1] then
      if amount or tonumber(head[2] or 0) <= spent_at then
        if amount or mode ~= 'retry' then
          redis.call('hincrby', budget, 'spent', cost)
        else
          -- Sent again and its reservation is gone: applied before its reply was lost, or its lease
          -- ran out while Redis was away. The ledger knows which: rebuild the spend from it.
          redis.call('hdel', budget, 'spent', 'seeded')
        end
      end
      redis.call('pexpire', budget, idle)
      redis.call('pexpire', key(i, 4), idle)
    end
    -- Without a known spend, this request's ledger row is counted when the spend is rebuilt.
  end
end
return 1
