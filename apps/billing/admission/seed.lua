-- A budget period's spend, rebuilt from the ledger, unless another process has set it meanwhile; the
-- moment it was set is kept with it, so a cost spent before that moment (the ledger counted it) is not
-- added again when its settlement arrives late (settle.lua).
-- KEYS: budget hash, budget leases zset. ARGV: now ms ('' = Redis' clock), spent units, idle ms.
local now = clock(ARGV[1])
if redis.call('hsetnx', KEYS[1], 'spent', ARGV[2]) == 1 then redis.call('hset', KEYS[1], 'seeded', now) end
redis.call('pexpire', KEYS[1], ARGV[3])
redis.call('pexpire', KEYS[2], ARGV[3])
return 1
