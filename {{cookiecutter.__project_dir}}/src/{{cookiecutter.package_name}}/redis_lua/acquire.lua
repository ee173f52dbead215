-- KEYS[1]: the identity's leases. ARGV: cap, lease seconds, lease id.
return acquire(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
