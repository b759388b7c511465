-- KEYS[1] = expiry set, KEYS[2] = index. ARGV[1] = now, ARGV[2] = list
-- strictly after this item ('' = from the start), ARGV[3] = how many live
-- items to return.
-- Returns a flat array: item, head, version, expiry, item, ... (never the
-- bodies: a listing does not move them).
local now = ARGV[1]
prune(KEYS[1], KEYS[2], now, 64)
local prefix = item_prefix(KEYS[1])
local out = {}
local want = tonumber(ARGV[3])
local found = 0
local start = '-'
if ARGV[2] ~= '' then
  start = '(' .. ARGV[2]
end
while found < want do
  local batch = redis.call('ZRANGEBYLEX', KEYS[2], start, '+', 'LIMIT', 0, want - found)
  if #batch == 0 then
    break
  end
  for _, item in ipairs(batch) do
    local h = redis.call('HMGET', prefix .. item, 'h', 'ver', 'exp')
    if h[1] and is_live(h[3], now) then
      table.insert(out, item)
      table.insert(out, h[1])
      table.insert(out, h[2])
      table.insert(out, h[3])
      found = found + 1
    end
  end
  start = '(' .. batch[#batch]
end
return out
