-- ARGV[3] = the most items to remove.
-- Returns {removed, the earliest expiry left in the partition ('' if none)}.
local refused = check_numbers(false, ARGV[2], ARGV[3])
if refused then
  return refused
end
local removed = prune(ARGV[2], tonumber(ARGV[3]))
local next = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return {removed, next[2] or ''}
