-- A handshake's one round trip: its rate, then (allowed) a lease.
-- KEYS: the rate keys, then the identity's leases, all with one hash tag.
-- ARGV: amount and window seconds per limit, then cap, lease seconds, lease id,
-- then the identity's leases to give back first (ended connections).
-- Returns {0, 1} admitted, {0, 0} at the cap, {milliseconds to wait, 0} refused.
local limits = (#KEYS - 1) / 2
local lease = 2 * limits + 1
release(KEYS[#KEYS], ARGV, lease + 3)
local wait = rate_wait(KEYS, ARGV, limits, 1)
if wait > 0 then
  return {wait, 0}
end
return {0, acquire(KEYS[#KEYS], ARGV[lease], ARGV[lease + 1], ARGV[lease + 2])}
