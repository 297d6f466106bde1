"""The Lua scripts the Redis limiter runs, each atomic on the Redis server.

Times are integer microseconds on the server's clock (``TIME``), so the clocks
of the client machines, and their skew, never matter. Every key a script
touches carries the same hash tag (``{name}``), so it runs on Redis Cluster.
Numbers written back are formatted with ``%.0f``: Lua numbers are doubles and
default formatting would round a microsecond timestamp.
"""

from __future__ import annotations

__all__ = ["ACQUIRE", "PAUSE"]

# Reserve the earliest start that fits both sliding windows, first come, first
# served, exactly like the in-process limiter: the start is at or after every
# start already handed out (so each window's starts stay in order, and the
# n-th latest start decides whether one more fits), after any shared pause,
# and after the caller's own local pause. A start past the caller's deadline is
# refused without being recorded.
#
# A cold start is when the clock key (the server time of the last grant) is
# missing or ahead of TIME. Missing: Redis lost its memory (a restart without
# persistence, a failover) or the budget is new, so the turns of the last
# window may be forgotten, and the first start is no earlier than the cold-start
# wait after the server came up (ARGV[9], its uptime, asked for by replying
# status 2 when it is ''). INFO's uptime is a difference of whole seconds of the
# wall clock, up to 1 s more than the server has really been up (a server started
# at 10.9 s reports 1 s at 11.1 s): the server came up no later than uptime - 1
# seconds ago, and that is the bound used. Ahead: the server's clock stepped back (or a replica
# with a clock behind took over), so the stored starts lie on another time line,
# and the first start is no earlier than the cold-start wait from now. Either
# way starts stored ahead of now are dropped, so they cannot stall the budget
# (and after a step back, so is the shared pause).
#
# KEYS: 1 per-second window (ZSET start -> member), 2 per-minute window, 3 pause-until,
#       4 clock (server time of the last grant).
# ARGV: 1 per_second (0: no limit), 2 per_minute (0: no limit), 3 second window (us),
#       4 minute window (us), 5 longest acceptable wait (us, -1: no deadline),
#       6 unique member, 7 local pause still to run (us), 8 cold-start wait (us),
#       9 server uptime (s, '' unknown).
# Returns {status (1 granted, 0 refused, 2 uptime needed), wait in ms rounded up,
#          shared pause still to run in us}.
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local seen = redis.call('GET', KEYS[4])
local cold_from, stepped = nil, false
if not seen then
  if ARGV[9] == '' then return {2, 0, 0} end
  cold_from = now - math.max(0, tonumber(ARGV[9]) - 1) * 1000000
else
  seen = tonumber(seen)
  if not seen then return redis.error_reply('ERR ' .. KEYS[4] .. ' is not a number') end
  if seen > now then cold_from, stepped = now, true end
end
local per_second, per_minute = tonumber(ARGV[1]), tonumber(ARGV[2])
local windows = {{KEYS[1], per_second, tonumber(ARGV[3])}, {KEYS[2], per_minute, tonumber(ARGV[4])}}
local max_wait = tonumber(ARGV[5])
local start = now + tonumber(ARGV[7])
local paused = tonumber(redis.call('GET', KEYS[3]) or '0')
if not paused then return redis.error_reply('ERR ' .. KEYS[3] .. ' is not a number') end
if stepped and paused > now then paused = now end
if cold_from then
  local first = cold_from + tonumber(ARGV[8])
  if first > start then start = first end
end
if paused > start then start = paused end
for _, w in ipairs(windows) do
  local key, n, span = w[1], w[2], w[3]
  if n > 0 then
    if cold_from then
      redis.call('ZREMRANGEBYSCORE', key, '(' .. string.format('%.0f', now), '+inf')
    end
    local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
    if last[2] and tonumber(last[2]) > start then start = tonumber(last[2]) end
    local nth = redis.call('ZRANGE', key, -n, -n, 'WITHSCORES')
    if nth[2] and tonumber(nth[2]) + span > start then start = tonumber(nth[2]) + span end
  end
end
local pause_left = math.max(0, paused - now)
local wait = start - now
if max_wait >= 0 and wait > max_wait then
  return {0, math.ceil(wait / 1000), pause_left}
end
local keep = math.ceil((wait + tonumber(ARGV[4])) / 1000) + 1000
for _, w in ipairs(windows) do
  local key, n, span = w[1], w[2], w[3]
  if n > 0 then
    redis.call('ZADD', key, string.format('%.0f', start), ARGV[6])
    -- Only the n latest starts can decide a later turn: memory stays at n members.
    redis.call('ZREMRANGEBYRANK', key, 0, -(n + 1))
    redis.call('PEXPIRE', key, math.ceil((wait + span) / 1000) + 1000)
  end
end
-- Outlives the windows: once it expires, their stored starts have expired too.
redis.call('SET', KEYS[4], string.format('%.0f', now), 'PX', keep)
return {1, math.ceil(wait / 1000), pause_left}
"""

# Push the shared pause out to now + ARGV[1] us (never pull it in).
# KEYS: 1 pause-until. Returns the shared pause still to run in us.
PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local target = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if target > current then
  redis.call('SET', KEYS[1], string.format('%.0f', target), 'PX',
    math.ceil(tonumber(ARGV[1]) / 1000) + 1000)
  current = target
end
return current - now
"""
