-- ARGV[3] = list strictly after this item ('' = from the start),
-- ARGV[4] = how many live items to return.
-- Returns a flat array: item, head, version, expiry, item, ... (never the
-- bodies: a listing does not move them).
local now = ARGV[2]
prune(now, 64)
local out = {}
local want = tonumber(ARGV[4])
local found = 0
local start = '-'
if ARGV[3] ~= '' then
  start = '(' .. ARGV[3]
end
while found < want do
  local batch = redis.call('ZRANGEBYLEX', KEYS[1], start, '+', 'LIMIT', 0, want - found)
  if #batch == 0 then
    break
  end
  for _, item in ipairs(batch) do
    local h = redis.call('HMGET', item_key(item), 'h', 'ver', 'exp')
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
