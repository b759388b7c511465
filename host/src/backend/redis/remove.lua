-- KEYS[3] = item hash. ARGV[3] = item, ARGV[4] = expected version.
-- Returns 1 (removed) or -1 (missing or at another version).
if redis.call('HGET', KEYS[3], 'ver') ~= ARGV[4] then
  return -1
end
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[1], ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[3])
return 1
