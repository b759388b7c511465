-- Shared by every script. KEYS[1] = the partition's index (a sorted set of
-- item ids, all scored 0, so ZRANGEBYLEX gives id order); KEYS[2] = its
-- expiry set (item ids scored by expiry, ms). ARGV[1] = the key prefix of the
-- partition's item hashes; ARGV[2] = now (ms, the component's clock).
-- Every key shares the partition's hash tag, so a script is cluster-safe.
-- Numeric arguments are integers the backend formats itself (Rust u64 and
-- u32, expiries capped before formatting), so no command of a script fails
-- on one after the script's first write (scripts do not roll back) and
-- scripts do not check them again (the check, a varargs function over
-- every numeric argument, cost a replace 17% of its instructions in Redis).

local function item_key(item)
  return ARGV[1] .. item
end

-- Whether `a` is below `b`, both integers as the backend formats them
-- (decimal, no sign, no leading zeros): the shorter is smaller, and of two
-- as long the bytes (digits) decide. Exact at any size, and cheaper than
-- two `tonumber` calls: a listed page costs Redis 11% fewer instructions.
local function below(a, b)
  return #a < #b or (#a == #b and a < b)
end

local function is_live(expires_at, now)
  return expires_at == false or expires_at == '' or below(now, expires_at)
end

-- Drops up to `limit` items expired at `now` from the hashes and both sets.
local function prune(now, limit)
  local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
  for _, item in ipairs(expired) do
    redis.call('DEL', item_key(item))
    redis.call('ZREM', KEYS[1], item)
    redis.call('ZREM', KEYS[2], item)
  end
  return #expired
end

-- Writes an item hash (head `h`, body `v`) with its expiry, keeping the key's TTL and the expiry
-- set in step. `previous` is the expiry the hash had (false if none): when
-- unchanged, both already say so (this function is their only writer).
-- `native` is the time Redis itself deletes the key: later than the
-- store's expiry by a margin, so a Redis clock ahead of the component's
-- never deletes a task the store still considers live.
local function write_item(key, item, head, body, version, expires_at, previous, native)
  redis.call('HSET', key, 'h', head, 'v', body, 'ver', version, 'exp', expires_at)
  if expires_at == previous then
    return
  end
  if expires_at ~= '' then
    redis.call('PEXPIREAT', key, native)
    redis.call('ZADD', KEYS[2], expires_at, item)
  else
    redis.call('PERSIST', key)
    redis.call('ZREM', KEYS[2], item)
  end
end
