-- Creates an item unless a live one holds its id or the quota is reached.
-- KEYS[1] = expiry set, KEYS[2] = item hash, KEYS[3] = index.
-- ARGV[1] = now, ARGV[2] = item, ARGV[3] = head, ARGV[4] = body,
-- ARGV[5] = expiry ('' = none), ARGV[6] = max live items ('' = no cap),
-- ARGV[7] = Redis's own expiry of the key ('' = none).
-- Returns 1 (created), -1 (a live item exists), -2 (quota reached).
-- Prefixed with the prelude, for its prune at the quota (see the prelude
-- on what its functions cost).
local now, item, expires_at, cap = ARGV[1], ARGV[2], ARGV[5], ARGV[6]
-- Every hash has its `exp` field ('' = no expiry): false means no hash.
local current = redis.call('HGET', KEYS[2], 'exp')
if current and is_live(current, now) then
  return -1
end
if cap ~= '' then
  -- The index's cardinality (kept by Redis, O(1)) counts every stored
  -- item, expired or not: under the cap, the live ones are too, and
  -- nothing needs pruning. At the cap, what has expired is pruned (the
  -- sweeper's work, done now because it decides this create) and counted
  -- again only for a partition with a backlog longer than one prune.
  local stored = redis.call('ZCARD', KEYS[3])
  if stored >= tonumber(cap) then
    local prune_limit = 64
    local pruned = prune(KEYS[1], KEYS[3], now, prune_limit)
    local live = stored - pruned
    if pruned >= prune_limit then
      live = live - redis.call('ZCOUNT', KEYS[1], '-inf', now)
    end
    if live >= tonumber(cap) then
      return -2
    end
  end
end
-- An expired item's hash may linger until Redis deletes it: this write
-- replaces each of its four fields and sets its TTL anew.
redis.call('HSET', KEYS[2], 'h', ARGV[3], 'v', ARGV[4], 'ver', 1, 'exp', expires_at)
if expires_at ~= '' then
  redis.call('PEXPIREAT', KEYS[2], ARGV[7])
  redis.call('ZADD', KEYS[1], expires_at, item)
elseif current then
  redis.call('PERSIST', KEYS[2])
  redis.call('ZREM', KEYS[1], item)
end
redis.call('ZADD', KEYS[3], 0, item)
return 1
