-- KEYS: the rate keys; ARGV: amount and window seconds per limit.
return rate_wait(KEYS, ARGV, #ARGV / 2, 1)
