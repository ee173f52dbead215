-- Connection leases: one sorted set per identity (member: lease id, score: its
-- expiry by Redis' clock), so every worker's clock agrees. Expire old leases,
-- count, add: two handshakes can never both take the last slot.
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function acquire(key, cap, seconds, id)
  local time = now()
  redis.call('ZREMRANGEBYSCORE', key, '-inf', time)
  if redis.call('ZCARD', key) >= tonumber(cap) then
    return 0
  end
  redis.call('ZADD', key, time + tonumber(seconds), id)
  redis.call('EXPIRE', key, math.ceil(tonumber(seconds)) + 1)
  return 1
end

-- Gives back the leases args[first], args[first + 1], ... of this identity.
local function release(key, args, first)
  for i = first, #args do
    redis.call('ZREM', key, args[i])
  end
end
