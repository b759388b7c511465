-- KEYS[3] = item hash. ARGV[3] = item, ARGV[4] = head, ARGV[5] = body,
-- ARGV[6] = expiry ('' = none), ARGV[7] = max live items ('' = no cap),
-- ARGV[8] = Redis's own expiry of the key ('' = none).
-- Returns 1 (created), -1 (a live item exists), -2 (quota reached).
local now = ARGV[2]
local prune_limit = 64
local pruned = prune(now, prune_limit)
local current = redis.call('HMGET', KEYS[3], 'ver', 'exp')
if current[1] and is_live(current[2], now) then
  return -1
end
if ARGV[7] ~= '' then
  -- The index's cardinality (kept by Redis, O(1)) counts every stored item;
  -- after a prune that stopped short of its limit none of them is expired,
  -- so only a partition with a backlog of expired items is counted again.
  local live = redis.call('ZCARD', KEYS[1])
  if pruned >= prune_limit then
    live = live - redis.call('ZCOUNT', KEYS[2], '-inf', now)
  end
  if live >= tonumber(ARGV[7]) then
    return -2
  end
end
-- An expired item's hash may linger until Redis deletes it.
if current[1] then
  redis.call('DEL', KEYS[3])
end
write_item(KEYS[3], ARGV[3], ARGV[4], ARGV[5], 1, ARGV[6], false, ARGV[8])
redis.call('ZADD', KEYS[1], 0, ARGV[3])
return 1
