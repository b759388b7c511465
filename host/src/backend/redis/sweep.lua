-- KEYS[1] = expiry set, KEYS[2] = index. ARGV[1] = now, ARGV[2] = the most
-- items to remove.
-- Returns {removed, the earliest expiry left in the partition ('' if none)}.
local removed = prune(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]))
local next = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {removed, next[2] or ''}
