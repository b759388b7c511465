-- Shared by the scripts that are not on every task's path (list, sweep,
-- remove) and by the create, for its prune at the quota. Each script's
-- header says which of its KEYS is the partition's expiry set
-- (`P:{T}:exp`: item ids scored by expiry, ms), its index (`P:{T}:idx`:
-- item ids, all scored 0, so ZRANGEBYLEX gives id order) and an item's
-- hash (`P:{T}:t:<item>`); ARGV[1] is now (ms, the component's
-- clock) where a script needs it. Every key shares the partition's hash
-- tag, so a script is cluster-safe.
--
-- What a script costs Redis (counted under callgrind, Redis 7.0): each
-- argument is copied into Lua's string table before the script runs
-- (1 300-1 800 instructions), each `local function` is a new closure on
-- every run (together with its calls, 6 000 of a replace's 59 000), a
-- returned table is turned into its reply field by field (5 000 for
-- `{1, 0}`), and each redis.call costs 4 000-9 000 beside what the command
-- does. So the two scripts every task runs (create, replace) take few
-- arguments and return one integer; the replace goes without these
-- functions (it spells out what it needs of them), and the create pays
-- for their closures (about 2 300 of its 98 000) to share the prune.
--
-- Numeric arguments are integers the backend formats itself (Rust u64 and
-- u32, expiries capped before formatting), so no command of a script fails
-- on one after the script's first write (scripts do not roll back) and
-- scripts do not check them again.

-- The prefix of a partition's item hashes, from its expiry set's key:
-- `P:{T}:exp` holds the ids of `P:{T}:t:<item>` (the backend's
-- `PartitionKeys` builds both; a test there keeps them in step). An item's
-- id is its hash's key from the expiry set key's length on (the prefix is
-- one byte shorter): remove.lua and replace.lua take it so, without a
-- function, whose closure every create would pay for.
local function item_prefix(expiries)
  return string.sub(expiries, 1, -4) .. 't:'
end

-- Whether `a` is below `b`, both integers as the backend formats them
-- (decimal, no sign, no leading zeros): the shorter is smaller, and of two
-- as long the bytes (digits) decide. Exact at any size, and cheaper than
-- two `tonumber` calls: a listed page costs Redis 11% fewer instructions.
local function below(a, b)
  return #a < #b or (#a == #b and a < b)
end

-- The liveness rule (replace.lua spells it out inline): no expiry field,
-- an empty one (no expiry) or one after now.
local function is_live(expires_at, now)
  return expires_at == false or expires_at == '' or below(now, expires_at)
end

-- Drops up to `limit` items expired at `now` from the hashes and both sets.
local function prune(expiries, index, now, limit)
  local expired = redis.call('ZRANGEBYSCORE', expiries, '-inf', now, 'LIMIT', 0, limit)
  if #expired > 0 then
    local prefix = item_prefix(expiries)
    for _, item in ipairs(expired) do
      redis.call('DEL', prefix .. item)
      redis.call('ZREM', index, item)
      redis.call('ZREM', expiries, item)
    end
  end
  return #expired
end
