-- One instance's tick for one breaker of the fleet (see mod.rs): add its
-- outcomes to the fleet's window, judge it, run the trial, answer the
-- fleet's state. Atomic in Redis. Nothing read from the keys is trusted.
--
-- KEYS: state hash, window hash
-- ARGV: id, seen generation, calls, failures, slow calls, demand (0/1),
--       verdict (0 none, 1 closed, 2 reopened), verdict's generation,
--       minimum calls, failure threshold (ppm), slow threshold (ppm, 0 off),
--       open wait (ms), backoff multiplier, max open wait (ms),
--       trial lease (ms), window (ms), key ttl (ms), events channel,
--       breaker name
-- Returns: generation, state (0 closed, 1 open, 2 half-open), ms left,
--          1 if this instance holds the trial, level, what happened
--          (see `Happened` in wire.rs)

local state_key, window_key = KEYS[1], KEYS[2]
local id = ARGV[1]
local seen = tonumber(ARGV[2])
local dc, df, ds = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local demand = ARGV[6] == '1'
local verdict, verdict_gen = tonumber(ARGV[7]), tonumber(ARGV[8])
local min_calls, fail_ppm, slow_ppm = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local open_ms, mult, max_open_ms = tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14])
local lease_ms, window_ms, ttl_ms = tonumber(ARGV[15]), tonumber(ARGV[16]), tonumber(ARGV[17])
local channel, name = ARGV[18], ARGV[19]

local GENS = 9007199254740992 -- 2^53: generations stay exact integers
local BUCKETS = 10

-- Redis 3.2 to 4 replicate a script that reads TIME only as its effects,
-- once asked; from 5 on that is the default (and from 7 the call is a no-op).
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- A key of another type (written by someone else) is dropped, not obeyed.
for _, k in ipairs({state_key, window_key}) do
  local kind = redis.call('TYPE', k).ok
  if kind ~= 'hash' and kind ~= 'none' then redis.call('DEL', k) end
end

local function int(v, lo, hi)
  local n = tonumber(v)
  if n == nil or n ~= math.floor(n) or n < lo or n > hi then return nil end
  return n
end

local s = redis.call('HMGET', state_key, 'gen', 'state', 'until', 'level', 'owner')
local gen, st = int(s[1], 0, GENS - 1), int(s[2], 0, 2)
local untl, level = int(s[3], 0, GENS - 1), int(s[4], 0, 15)
local owner = s[5] or ''
local happened, dirty = 0, false

local function enter(new_st, new_until, new_level, new_owner, why)
  gen = ((gen or 0) + 1) % GENS
  st, untl, level, owner, happened, dirty = new_st, new_until, new_level, new_owner, why, true
  redis.call('DEL', window_key)
end

local function wait(l)
  local w = math.floor(open_ms * mult ^ l)
  if w > max_open_ms then w = max_open_ms end
  return w
end

if s[1] == false and s[2] == false then
  -- No fleet state yet (or it expired): closed, generation 0.
  gen, st, untl, level, owner, dirty = 0, 0, 0, 0, '', true
elseif gen == nil or st == nil or untl == nil or level == nil
    or (st == 1 and untl - now > 4 * max_open_ms + 60000)
    or (st == 2 and untl - now > 4 * lease_ms + 60000) then
  -- Not a state this script wrote: start afresh rather than obey it. The
  -- bound is loose (4 times this instance's longest wait, and a minute) so
  -- that instances whose configs or fleet settings differ (a rolling
  -- deploy) do not take each other's deadlines for garbage.
  enter(0, 0, 0, '', 6)
end

-- 1. The trial owner's verdict, if it is about the trial in force.
if verdict > 0 and verdict_gen == gen and st == 2 and owner == id then
  if verdict == 1 then
    enter(0, 0, 0, '', 4)
  else
    local l = math.min(level + 1, 15)
    enter(1, now + wait(l), l, '', 5)
  end
end

-- 2. While closed: add this instance's outcomes (if it has seen this
--    generation: others belong to another) and judge the window.
if st == 0 and seen == gen and dc > 0 then
  local bucket_ms = math.max(1, math.ceil(window_ms / BUCKETS))
  local b = math.floor(now / bucket_ms)
  local fields = {}
  for i = b - BUCKETS + 1, b do
    fields[#fields + 1] = i .. ':c'
    fields[#fields + 1] = i .. ':f'
    fields[#fields + 1] = i .. ':s'
  end
  local v = redis.call('HMGET', window_key, unpack(fields))
  local c, f, sl = dc, df, ds
  for i = 1, #v, 3 do
    local vc, vf, vs = int(v[i] or 0, 0, GENS), int(v[i + 1] or 0, 0, GENS), int(v[i + 2] or 0, 0, GENS)
    if vc == nil or vf == nil or vs == nil then
      -- Not counts this script wrote: the window starts afresh.
      redis.call('DEL', window_key)
      c, f, sl = dc, df, ds
      break
    end
    c, f, sl = c + vc, f + vf, sl + vs
  end
  redis.call('HINCRBY', window_key, b .. ':c', dc)
  if df > 0 then redis.call('HINCRBY', window_key, b .. ':f', df) end
  if ds > 0 then redis.call('HINCRBY', window_key, b .. ':s', ds) end
  redis.call('PEXPIRE', window_key, window_ms + bucket_ms)
  -- Buckets left behind by an idle spell: drop them once they add up.
  if redis.call('HLEN', window_key) > 3 * BUCKETS * 2 then
    for _, k in ipairs(redis.call('HKEYS', window_key)) do
      local kb = tonumber(string.match(k, '^(-?%d+):'))
      if kb == nil or kb <= b - BUCKETS then redis.call('HDEL', window_key, k) end
    end
  end
  if c >= min_calls and c > 0 then
    if f * 1000000 >= fail_ppm * c then
      enter(1, now + wait(0), 0, '', 1)
    elseif slow_ppm > 0 and sl * 1000000 >= slow_ppm * c then
      enter(1, now + wait(0), 0, '', 2)
    end
  end
end

-- 3. The trial: the first instance with demand once the wait is over (or
--    once the last owner's lease ran out without a verdict).
if demand and st ~= 0 and now >= untl then
  enter(2, now + lease_ms, level, id, 3)
end

if dirty then
  redis.call('HSET', state_key, 'gen', gen, 'state', st, 'until', untl, 'level', level, 'owner', owner)
end
redis.call('PEXPIRE', state_key, ttl_ms)

-- Every instance's fleet thread listens: a trip, a verdict or a reset
-- reaches them now rather than at their next tick. (A claimed trial
-- changes nothing for the others: they stay held.)
if happened ~= 0 and happened ~= 3 then
  -- pcall: a user whose ACL forbids the channel still gets its tick.
  redis.pcall('PUBLISH', channel, name)
end

local left = 0
if st ~= 0 and untl > now then left = untl - now end
local mine = 0
if st == 2 and owner == id then mine = 1 end
return {gen, st, left, mine, level, happened}
