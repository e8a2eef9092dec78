-- Admission of one demand against every limit of every subject: all or nothing, in one round trip.
-- The arithmetic is apps/billing/admission/rates.py's (GCRA in integers below 2^53) and money.py's
-- (integer units of 10^-10 USD, compared exactly in two limbs). redis_backend.py documents the keys.
--
-- KEYS, four per subject: rate hash, slots zset, budget hash, budget leases zset (one hash slot).
-- ARGV: now ms ('' = Redis' clock), request id, lease ms, tokens, cost units, budget idle ms, then
--       one per subject: 'rpm,tpm,max_parallel,budget units' (a blank field: no such limit).
-- Reply, one string (redis-py parses one bulk string far faster than an array of them):
--   'ok <now> <subject> <subject>…' (states after) or 'refused <now> <subject>…' (states as they
--   stood, nothing taken), each subject 'refused bits,requests level,tokens level,slots in use,
--   spent,reserved' (-1 or blank: not limited); or 'unseeded <now> <subject numbers, comma-separated>'
--   when a budget period's spend is unknown (nothing taken).
local BASE = 1000000000

local function fits(level, cost, capacity)
  return level == 0 or level + cost <= capacity
end

-- A signed decimal integer as hi * BASE + lo with 0 <= lo < BASE: each limb is exact in a double.
local function limbs(text)
  if not text or text == '' then return 0, 0 end
  local negative = string.sub(text, 1, 1) == '-'
  if negative then text = string.sub(text, 2) end
  local n = #text
  local hi = tonumber(string.sub(text, 1, math.max(0, n - 9))) or 0
  local lo = tonumber(string.sub(text, math.max(1, n - 8))) or 0
  if negative then
    hi = -hi
    if lo > 0 then hi, lo = hi - 1, BASE - lo end
  end
  return hi, lo
end

-- spent + reserved + cost <= limit, exactly.
local function affordable(limit, spent, reserved, cost)
  if cost == '0' then return true end
  local h1, l1 = limbs(spent)
  local h2, l2 = limbs(reserved)
  local h3, l3 = limbs(cost)
  local lo = l1 + l2 + l3
  local hi = h1 + h2 + h3 + math.floor(lo / BASE)
  lo = lo % BASE
  local lh, ll = limbs(limit)
  return hi < lh or (hi == lh and lo <= ll)
end

-- Reservations whose lease ran out are given back (a bounded number per call; the rest next time).
local function expire_reservations(budget, leases, now)
  local expired = redis.call('zrangebyscore', leases, '-inf', now, 'LIMIT', 0, 100)
  for _, id in ipairs(expired) do
    local amount = redis.call('hget', budget, 'r:' .. id)
    if amount then
      redis.call('hdel', budget, 'r:' .. id)
      if amount ~= '0' then redis.call('hincrby', budget, 'reserved', '-' .. amount) end
    end
    redis.call('zrem', leases, id)
  end
end

local now = clock(ARGV[1])
local id, lease, tokens, cost, idle = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local count = #KEYS / 4
local function key(i, j) return KEYS[4 * (i - 1) + j] end
local limits = {}
for i = 1, count do
  local rpm, tpm, parallel, budget = string.match(ARGV[6 + i], '^([^,]*),([^,]*),([^,]*),([^,]*)$')
  limits[i] = {rpm = tonumber(rpm), tpm = tonumber(tpm), parallel = tonumber(parallel), budget = budget}
end

local unseeded = {}
for i = 1, count do
  if limits[i].budget ~= '' and redis.call('hexists', key(i, 3), 'spent') == 0 then unseeded[#unseeded + 1] = i end
end
if #unseeded > 0 then return 'unseeded ' .. string.format('%.0f', now) .. ' ' .. table.concat(unseeded, ',') end

local states, refused = {}, false
for i = 1, count do
  local rpm, tpm, parallel, budget = limits[i].rpm, limits[i].tpm, limits[i].parallel, limits[i].budget
  local s = {bits = 0, requests = -1, tokens = -1, slots = -1, spent = '', reserved = ''}
  if rpm or tpm then
    local r = redis.call('hmget', key(i, 1), 'rl', 'rt', 'tl', 'tt')
    if rpm then
      s.requests = drained(tonumber(r[1]), tonumber(r[2]), now, rpm)
      if not fits(s.requests, WINDOW, WINDOW * rpm) then s.bits = s.bits + 1 end
    end
    if tpm then
      s.tokens = drained(tonumber(r[3]), tonumber(r[4]), now, tpm)
      if not fits(s.tokens, tokens * WINDOW, WINDOW * tpm) then s.bits = s.bits + 2 end
    end
  end
  if parallel then
    redis.call('zremrangebyscore', key(i, 2), '-inf', now)
    s.slots = redis.call('zcard', key(i, 2))
    if s.slots >= parallel then s.bits = s.bits + 4 end
  end
  if budget ~= '' then
    expire_reservations(key(i, 3), key(i, 4), now)
    local b = redis.call('hmget', key(i, 3), 'spent', 'reserved')
    s.spent, s.reserved = b[1], b[2] or '0'
    if not affordable(budget, s.spent, s.reserved, cost) then s.bits = s.bits + 8 end
  end
  if s.bits > 0 then refused = true end
  states[i] = s
end

if not refused then
  for i = 1, count do
    local rpm, tpm, parallel, budget = limits[i].rpm, limits[i].tpm, limits[i].parallel, limits[i].budget
    local s = states[i]
    if rpm or tpm then
      local drain = 0
      if rpm then
        s.requests = math.min(MAX_LEVEL, s.requests + WINDOW)
        redis.call('hset', key(i, 1), 'rl', s.requests, 'rt', now)
        drain = math.ceil(s.requests / rpm)
      end
      if tpm then
        s.tokens = math.min(MAX_LEVEL, s.tokens + tokens * WINDOW)
        redis.call('hset', key(i, 1), 'tl', s.tokens, 'tt', now)
        drain = math.max(drain, math.ceil(s.tokens / tpm))
      end
      -- Gone once drained (a margin for clocks that run apart): a missing bucket is an empty one.
      if redis.call('pttl', key(i, 1)) < drain + WINDOW then redis.call('pexpire', key(i, 1), drain + WINDOW) end
    end
    if parallel then
      redis.call('zadd', key(i, 2), now + lease, id)
      redis.call('pexpire', key(i, 2), lease + WINDOW)
      s.slots = s.slots + 1
    end
    if budget ~= '' then
      if cost ~= '0' then
        redis.call('hset', key(i, 3), 'r:' .. id, cost)
        redis.call('hincrby', key(i, 3), 'reserved', cost)
        redis.call('zadd', key(i, 4), now + lease, id)
      end
      redis.call('pexpire', key(i, 3), idle)
      redis.call('pexpire', key(i, 4), idle)
    end
  end
end

-- Integers as text without an exponent: levels stay below 2^53, so '%.0f' is exact.
local reply = {refused and 'refused' or 'ok', string.format('%.0f', now)}
for i = 1, count do
  local s = states[i]
  reply[#reply + 1] = string.format('%d,%.0f,%.0f,%d,%s,%s', s.bits, s.requests, s.tokens, s.slots, s.spent or '',
                                    s.reserved)
end
return table.concat(reply, ' ')
