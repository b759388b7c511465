-- ARGV[3] = the most items to remove. Returns how many were removed.
return prune(ARGV[2], tonumber(ARGV[3]))
