-- KEYS[1]: the identity's leases. ARGV: cap, lease seconds, lease id, then the
-- identity's leases to give back first (ended connections, not yet released).
release(KEYS[1], ARGV, 4)
return acquire(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
