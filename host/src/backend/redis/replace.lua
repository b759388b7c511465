-- KEYS[3] = item hash. ARGV[3] = item, ARGV[4] = expected version,
-- ARGV[5] = head, ARGV[6] = body, ARGV[7] = expiry ('' = none), ARGV[8] =
-- Redis's own expiry of the key ('' = none).
-- Returns {new version, 1 if the expiry moved earlier (or appeared), else 0},
-- or {-1, 0} when the item is missing, expired or at another version.
local current = redis.call('HMGET', KEYS[3], 'ver', 'exp')
if not current[1] or current[1] ~= ARGV[4] or not is_live(current[2], ARGV[2]) then
  return {-1, 0}
end
local version = tonumber(current[1]) + 1
write_item(KEYS[3], ARGV[3], ARGV[5], ARGV[6], version, ARGV[7], current[2], ARGV[8])
local earlier = ARGV[7] ~= '' and (current[2] == '' or below(ARGV[7], current[2]))
return {version, earlier and 1 or 0}
