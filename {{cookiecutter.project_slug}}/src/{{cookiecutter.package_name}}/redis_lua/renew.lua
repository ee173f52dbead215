-- KEYS[1]: one identity's leases; ARGV: lease seconds, then lease ids. Re-adds
-- a lease a restarted or failed-over Redis lost, so counts recover within one renewal.
local expires = now() + tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], expires, ARGV[i])
end
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1])) + 1)
return #ARGV - 1
