"""Running window sums kept in Redis by a script, so that a key's read costs the same
however long its history is.

Why by hand: reading every event of a key's last 30 days on each event (what the Redis
store did first) cost 31 ms of CPU per event on a key with 3,000 events, and grows with the
history (bench/RESULTS.md). No library keeps exact sliding-window sums in Redis; this
script keeps them as the in-process store keeps them in memory (``windows.py``).

Per track and entity key, beside the sorted set of events (``{base}``):

* ``{base}:win``, a hash: ``t``, the event time the sums stand at, and ``s{k}_{j}``, the sum
  of measure ``j`` over window ``k`` at ``t``;
* ``{base}:d{j}``, a hash per distinct count over a finite window: value -> occurrences.

Moving ``t`` forward to ``now`` adds the events that matured in between (delayed tracks)
and subtracts those that left each window, found by score range: each event is touched a
fixed number of times in its life. A write adds its event where it belongs at ``t``. The
membership rules are those of ``RedisFeatureStore`` before (and of the in-process store):
an event is in window ``k`` at ``now`` when it has matured (no delay, or ``at + delay <=
now``) and ``now < at + delay + length``; in a distinct count's window when ``now < at +
length``. Anything out of order falls back to the exact computation over the sorted set: a
read for a time before ``t`` computes without changing the sums, and a late write (or a
relabel) drops them, to be rebuilt by the next read.
"""

from __future__ import annotations

# Per track key (``handle``): K 1 the sorted set of events, 2 the window sums, 3.. one
# counter hash per distinct; A: mode ('read' | 'write'), now, delay, nwin, the windows'
# lengths (-1: all history, kept elsewhere), width, ndist, the distinct counts' window
# lengths (-1: all history), then for 'write': the event's member, the keys' TTL in ms,
# the longest span. One run of the script handles every track key of an event.
# Times are integers in µs; Lua's doubles hold them exactly (below 2^53), and every number
# sent back to Redis is formatted with %.0f so that none is written as 1.7e+15.
WINDOWS_LUA = r"""
local function handle(K, A)
  local mode = A[1]
  local now = tonumber(A[2])
  local delay = tonumber(A[3])
  local nwin = tonumber(A[4])
  local lens = {}
  for k = 1, nwin do lens[k] = tonumber(A[4 + k]) end
  local width = tonumber(A[5 + nwin])
  local ndist = tonumber(A[6 + nwin])
  local dlens = {}
  for j = 1, ndist do dlens[j] = tonumber(A[6 + nwin + j]) end
  local rest = 7 + nwin + ndist
  local zset, win = K[1], K[2]

  local function fmt(x) return string.format('%.0f', x) end
  local function field(k, j) return 's' .. k .. '_' .. j end
  local function dkey(v)
    if type(v) == 'string' then return 's:' .. v end
    if type(v) == 'number' then return 'n:' .. fmt(v) end
    return 'o:' .. cjson.encode(v)
  end
  local function between(lo, hi)  -- the events with lo < at <= hi
    if hi <= lo then return {} end
    return redis.call('ZRANGEBYSCORE', zset, '(' .. fmt(lo), fmt(hi))
  end
  local function hset_all(key, pairs_)
    for i = 1, #pairs_, 1000 do
      redis.call('HSET', key, unpack(pairs_, i, math.min(i + 999, #pairs_)))
    end
  end

  -- The exact values at a time from every stored event.
  local function compute(at_time)
    local sums, seen, counts = {}, {}, {}
    for k = 1, nwin do
      sums[k] = {}
      for j = 1, width do sums[k][j] = 0 end
    end
    for j = 1, ndist do seen[j] = {}; counts[j] = 0 end
    for _, m in ipairs(redis.call('ZRANGE', zset, 0, -1)) do
      local e = cjson.decode(m)
      local at, measures, values = e[2], e[3], e[4]
      local matured = delay == 0 or at + delay <= at_time
      for k = 1, nwin do
        if lens[k] >= 0 and matured and at_time < at + delay + lens[k] then
          for j = 1, width do sums[k][j] = sums[k][j] + measures[j] end
        end
      end
      for j = 1, ndist do
        local v = values[j]
        if dlens[j] >= 0 and at_time < at + dlens[j] and v ~= cjson.null then
          local key = dkey(v)
          if seen[j][key] == nil then seen[j][key] = 0; counts[j] = counts[j] + 1 end
          seen[j][key] = seen[j][key] + 1
        end
      end
    end
    return sums, seen, counts
  end

  local function rebuild(at_time)
    local sums, seen = compute(at_time)
    redis.call('DEL', win)
    local args = {'t', fmt(at_time)}
    for k = 1, nwin do
      if lens[k] >= 0 then
        for j = 1, width do
          if sums[k][j] ~= 0 then
            args[#args + 1] = field(k, j); args[#args + 1] = fmt(sums[k][j])
          end
        end
      end
    end
    hset_all(win, args)
    for j = 1, ndist do
      redis.call('DEL', K[2 + j])
      local pairs_ = {}
      for v, c in pairs(seen[j]) do pairs_[#pairs_ + 1] = v; pairs_[#pairs_ + 1] = c end
      if #pairs_ > 0 then hset_all(K[2 + j], pairs_) end
    end
    -- they live as long as the events they sum (a read rebuilds them too)
    local ttl_left = redis.call('PTTL', zset)
    if ttl_left > 0 then
      for i = 2, #K do
        if redis.call('EXISTS', K[i]) == 1 then redis.call('PEXPIRE', K[i], ttl_left) end
      end
    end
  end

  local function add_measures(k, measures, sign)
    for j = 1, width do
      local m = measures[j]
      if m ~= 0 then redis.call('HINCRBY', win, field(k, j), fmt(sign * m)) end
    end
  end

  -- Move the sums to now; false when now is before them (an out-of-order read).
  local function advance()
    local t = redis.call('HGET', win, 't')
    if not t then rebuild(now); return true end
    t = tonumber(t)
    if now < t then return false end
    if now == t then return true end
    for k = 1, nwin do
      local len = lens[k]
      if len >= 0 then
        if delay > 0 then
          for _, m in ipairs(between(t - delay, now - delay)) do
            add_measures(k, cjson.decode(m)[3], 1)
          end
        end
        for _, m in ipairs(between(t - delay - len, now - delay - len)) do
          add_measures(k, cjson.decode(m)[3], -1)
        end
      end
    end
    for j = 1, ndist do
      local len = dlens[j]
      if len >= 0 then
        for _, m in ipairs(between(t - len, now - len)) do
          local v = cjson.decode(m)[4][j]
          if v ~= cjson.null then
            local key = dkey(v)
            if redis.call('HINCRBY', K[2 + j], key, -1) <= 0 then
              redis.call('HDEL', K[2 + j], key)
            end
          end
        end
      end
    end
    redis.call('HSET', win, 't', fmt(now))
    return true
  end

  local function flat(sums, counts)
    local out = {}
    for k = 1, nwin do
      if lens[k] >= 0 then
        for j = 1, width do out[#out + 1] = sums[k][j] end
      end
    end
    for j = 1, ndist do out[#out + 1] = counts[j] end
    return out
  end

  local function current()
    local sums, counts = {}, {}
    for k = 1, nwin do
      sums[k] = {}
      if lens[k] >= 0 then
        local names = {}
        for j = 1, width do names[j] = field(k, j) end
        local got = redis.call('HMGET', win, unpack(names))
        for j = 1, width do sums[k][j] = tonumber(got[j]) or 0 end
      end
    end
    for j = 1, ndist do
      counts[j] = dlens[j] >= 0 and redis.call('HLEN', K[2 + j]) or 0
    end
    return flat(sums, counts)
  end

  if mode == 'read' then
    if redis.call('EXISTS', zset) == 0 then  -- a key with no events: nothing to keep
      local sums, _, counts = compute(now)
      return flat(sums, counts)
    end
    if advance() then return current() end
    local sums, _, counts = compute(now)
    return flat(sums, counts)
  end

  -- write: the event at now
  local member, ttl, longest = A[rest], tonumber(A[rest + 1]), tonumber(A[rest + 2])
  local in_order = advance()
  local added = redis.call('ZADD', zset, fmt(now), member)
  if not in_order then
    redis.call('DEL', win)  -- the sums are ahead of this event: rebuilt by the next read
  elseif added == 1 then
    local e = cjson.decode(member)
    local at, measures, values = e[2], e[3], e[4]
    for k = 1, nwin do
      if lens[k] >= 0 and (delay == 0 or at + delay <= now) and now < at + delay + lens[k] then
        add_measures(k, measures, 1)
      end
    end
    for j = 1, ndist do
      local v = values[j]
      if dlens[j] >= 0 and now < at + dlens[j] and v ~= cjson.null then
        redis.call('HINCRBY', K[2 + j], dkey(v), 1)
      end
    end
  end
  redis.call('ZREMRANGEBYSCORE', zset, '-inf', fmt(now - longest))
  for i = 1, #K do redis.call('PEXPIRE', K[i], fmt(ttl)) end
  return added
end

-- A track key's all-history state (the windows that never end, the time of its last event):
-- K 1 the hash of sums (s0, s1...) and 'last', 2.. one set per all-history distinct count.
-- A: 'all_read'; or 'all_write', now, the keys' TTL in ms, how many sums to add, those
-- (field, increment) pairs, then per set whether the event has a value ('1' or '0') and the
-- value. A read answers {the hash as field, value..., each set's size...}.
local function handle_all(K, A)
  if A[1] == 'all_read' then
    local out = {redis.call('HGETALL', K[1])}
    for i = 2, #K do out[#out + 1] = redis.call('SCARD', K[i]) end
    return out
  end
  local now, ttl, n = A[2], A[3], tonumber(A[4])
  for i = 1, n do redis.call('HINCRBY', K[1], A[3 + 2 * i], A[4 + 2 * i]) end
  redis.call('HSET', K[1], 'last', now)
  redis.call('PEXPIRE', K[1], ttl)
  local at = 5 + 2 * n
  for i = 2, #K do
    if A[at] == '1' then
      redis.call('SADD', K[i], A[at + 1])
      redis.call('PEXPIRE', K[i], ttl)
    end
    at = at + 2
  end
  return 1
end

-- ARGV[1]: a JSON array of strings: how many calls, then for each: its number of keys and
-- of arguments, and the arguments (one argument, not a hundred: the client encodes each
-- argument of a command on its own); KEYS: each call's keys in the same order. A call is a
-- track key's windows (handle) or its all-history state (handle_all). One reply per call.
local args = cjson.decode(ARGV[1])
local replies, ki, ai = {}, 1, 2
for i = 1, tonumber(args[1]) do
  local nkeys, nargs = tonumber(args[ai]), tonumber(args[ai + 1])
  ai = ai + 2
  local K, A = {}, {}
  for x = 1, nkeys do K[x] = KEYS[ki + x - 1] end
  for x = 1, nargs do A[x] = args[ai + x - 1] end
  ki, ai = ki + nkeys, ai + nargs
  if A[1] == 'all_read' or A[1] == 'all_write' then
    replies[i] = handle_all(K, A)
  else
    replies[i] = handle(K, A)
  end
end
return replies
"""
