-- ARGV[3] = the most items to remove.
-- Returns {removed, the earliest expiry left in the partition ('' if none)}.
local removed = prune(ARGV[2], tonumber(ARGV[3]))
local next = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return {removed, next[2] or ''}
