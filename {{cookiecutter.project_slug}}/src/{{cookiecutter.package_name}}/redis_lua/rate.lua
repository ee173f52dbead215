-- Handshake rates: the limits library's sliding-window counter
-- (its acquire_sliding_window.lua), every limit of a handshake in one call.
-- keys: two per limit, limits' layout ("<key>/-1": the previous window's count,
-- "<key>": the current one's), all with the client address's hash tag.
-- args: amount and window seconds per limit, from position `first` on.
-- Returns 0 when every limit allows the event (counted in each), else the
-- milliseconds until the refusing limit frees a slot, counting nothing more.
local function rate_wait(keys, args, limits, first)
  for i = 1, limits do
    local previous, current = keys[2 * i - 1], keys[2 * i]
    local limit = tonumber(args[first + 2 * i - 2])
    local expiry = tonumber(args[first + 2 * i - 1]) * 1000
    local current_ttl = tonumber(redis.call('pttl', current))
    if current_ttl > 0 and current_ttl < expiry then
      -- The current window ended: it becomes the previous one.
      redis.call('rename', current, previous)
      redis.call('set', current, 0, 'PX', current_ttl + expiry)
    end
    local previous_count = tonumber(redis.call('get', previous)) or 0
    local previous_ttl = math.max(tonumber(redis.call('pttl', previous)) or 0, 0)
    local current_count = tonumber(redis.call('get', current)) or 0
    current_ttl = math.max(tonumber(redis.call('pttl', current)) or 0, 0)
    if math.floor(previous_count * previous_ttl / expiry) + current_count + 1 > limit then
      local wait = math.huge
      if previous_count > 0 then wait = previous_ttl % (expiry / previous_count) end
      -- (limits takes current_ttl % expiry, 0 within the millisecond of a new
      -- window: the wait is then a whole window, not nothing.)
      if current_count > 0 then wait = math.min(wait, (current_ttl - 1) % expiry + 1) end
      if wait == math.huge then wait = expiry end
      return math.max(math.ceil(wait), 1)
    end
    if redis.call('exists', current) == 1 then
      redis.call('incrby', current, 1)
    else
      redis.call('set', current, 1, 'PX', expiry * 2)
    end
  end
  return 0
end
