-- KEYS[1] = expiry set, KEYS[2] = item hash, KEYS[3] = index.
-- ARGV[1] = expected version.
-- Returns 1 (removed) or -1 (missing or at another version).
if redis.call('HGET', KEYS[2], 'ver') ~= ARGV[1] then
  return -1
end
-- The item's id (see the prelude's item_prefix).
local item = string.sub(KEYS[2], #KEYS[1])
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], item)
redis.call('ZREM', KEYS[1], item)
return 1
