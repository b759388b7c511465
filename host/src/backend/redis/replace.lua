-- Writes a new version of a live item at the expected version.
-- KEYS[1] = expiry set, KEYS[2] = item hash.
-- ARGV[1] = now, ARGV[2] = expected version, ARGV[3] = head, ARGV[4] =
-- body, ARGV[5] = expiry ('' = none), ARGV[6] = Redis's own expiry of the
-- key ('' = none).
-- Returns the new version, negated when the expiry moved earlier (or
-- appeared); 0 when the item is missing, expired or at another version.
-- No helper functions: see the prelude on what they would cost.
local now, expires_at = ARGV[1], ARGV[5]
local current = redis.call('HMGET', KEYS[2], 'ver', 'exp')
local previous = current[2]
if current[1] ~= ARGV[2]
    or not (previous == false or previous == '' or #now < #previous
            or (#now == #previous and now < previous)) then
  return 0
end
local version = current[1] + 1
redis.call('HSET', KEYS[2], 'h', ARGV[3], 'v', ARGV[4], 'ver', version, 'exp', expires_at)
-- The key's TTL and the expiry set say what the hash said: when the
-- expiry is unchanged (a task's is, but for its end), nothing else moves.
if expires_at == previous then
  return version
end
-- The item's id (see the prelude's item_prefix).
local item = string.sub(KEYS[2], #KEYS[1])
if expires_at == '' then
  redis.call('PERSIST', KEYS[2])
  redis.call('ZREM', KEYS[1], item)
  return version
end
redis.call('PEXPIREAT', KEYS[2], ARGV[6])
redis.call('ZADD', KEYS[1], expires_at, item)
if previous == false or previous == '' or #expires_at < #previous
    or (#expires_at == #previous and expires_at < previous) then
  return -version
end
return version
