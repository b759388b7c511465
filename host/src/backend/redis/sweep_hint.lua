-- The sweep index: KEYS[1] = a sorted set of partitions scored by (a lower
-- bound of) their earliest expiry. ARGV[1] = partition, ARGV[2] = the score
-- the sweep read, ARGV[3] = the partition's earliest expiry now ('' = none).
-- Moves the partition's score only if nobody changed it since the sweep
-- read it: a create that lowered it meanwhile keeps its lower score.
if redis.call('ZSCORE', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1
