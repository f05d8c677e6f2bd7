"""The Lua scripts the store runs. Each touches one key, so all run on Redis Cluster.

The state envelope is parsed with ``cjson``, never with a pattern. Its head (version,
updated_at, fence, codec) comes first, so the script decodes just that head: the bytes up
to the top-level ``,"state":`` closed with ``}``. A value that does not open that way
(another tool's envelope with spaces, say) is decoded whole. A version that is not an
integer in ``0..2**53-1`` is refused rather than wrapped.
"""

from __future__ import annotations

from typing import Final

__all__ = ["EXTEND_LOCK", "NEXT_FENCE", "RAISE_FENCE", "RELEASE_LOCK", "WRITE"]

# Returns version, updated_at, fence, codec, state offset (0 when the head path was not
# usable), or nil for an absent key; error() for an unusable version.
_READ_HEAD: Final = """
local MAXV = 9007199254740991
local function read_head(key)
  local h = redis.call('GETRANGE', key, 0, 255)
  if h == '' then
    if redis.call('EXISTS', key) == 0 then return nil end
  end
  local t, at_state = nil, 0
  local p = string.find(h, ',"state":{', 1, true)
  if p then
    local ok, head = pcall(cjson.decode, string.sub(h, 1, p - 1) .. '}')
    if ok and type(head) == 'table' and type(head['version']) == 'number' then
      t, at_state = head, p
    end
  end
  if t == nil then
    local ok, whole = pcall(cjson.decode, redis.call('GET', key))
    if not ok or type(whole) ~= 'table' or type(whole['state']) ~= 'table'
        or type(whole['version']) ~= 'number' then
      return {0, '', 0, 'json', 0}  -- a seed-era bare state, or not ours: version 0
    end
    t = whole
  end
  local v = t['version']
  if v ~= math.floor(v) or v < 0 or v > MAXV then
    return redis.error_reply('audit_core: stored version out of range')
  end
  local at = t['updated_at']
  if type(at) ~= 'string' then at = '' end
  local fence = t['fence']
  if type(fence) ~= 'number' then fence = 0 end
  local codec = t['codec']
  if type(codec) ~= 'string' then codec = 'json' end
  return {v, at, fence, codec, at_state}
end
"""

WRITE: Final = (
    _READ_HEAD
    + """
-- KEYS[1] state key. ARGV[1] the state's JSON. ARGV[2] "mode expected ttl token version
-- codec updated_at": mode 'any' | 'eq' | 'same' | 'newer'; expected version ('eq',
-- 'same'); ttl seconds; fencing token (0: not under a lock); version to write (0:
-- current + 1); codec. ARGV[3] expected updated_at ('same').
-- Returns {1, version, fence} written; {0, version, fence} condition failed;
-- {-1, version, fence} stale fencing token.
local mode, expected, ttl, token, want, codec, now = string.match(ARGV[2],
  '^(%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+)$')
local cur = read_head(KEYS[1])
if cur and cur['err'] then return cur end
local v, at, fence = 0, '', 0
if cur then v, at, fence = cur[1], cur[2], cur[3] end
token = tonumber(token)
if token > 0 and token < fence then return {-1, v, fence} end
if mode == 'eq' and tonumber(expected) ~= v then return {0, v, fence} end
if mode == 'same' and (tonumber(expected) ~= v or (ARGV[3] or '') ~= at) then
  return {0, v, fence}
end
if mode == 'newer' and cur and at >= now then return {0, v, fence} end
local nv = tonumber(want)
if nv <= v then nv = v + 1 end
if nv > MAXV then return redis.error_reply('audit_core: version limit reached') end
if token > fence then fence = token end
local head = '{"version":' .. string.format('%d', nv) .. ',"updated_at":"' .. now
  .. '","fence":' .. string.format('%d', fence) .. ',"codec":"' .. codec .. '","state":'
if #ARGV[1] < 16384 then
  redis.call('SET', KEYS[1], head .. ARGV[1] .. '}', 'EX', ttl)
else  -- APPEND copies the big state once; a Lua concatenation would copy it twice
  redis.call('SET', KEYS[1], head, 'EX', ttl)
  redis.call('APPEND', KEYS[1], ARGV[1])
  redis.call('APPEND', KEYS[1], '}')
end
return {1, nv, fence}
"""
)

RAISE_FENCE: Final = (
    _READ_HEAD
    + """
-- KEYS[1] state key, ARGV[1] a new holder's token. Raises the stored fence to it so an
-- older holder's writes are refused from now on. Returns the stored fence afterwards
-- (0 when there is no state yet, or it is not in the canonical layout).
local cur = read_head(KEYS[1])
if cur == nil then return 0 end
if cur['err'] then return cur end
local token = tonumber(ARGV[1])
if cur[3] >= token or cur[5] == 0 then return cur[3] end
local rest = string.sub(redis.call('GET', KEYS[1]), cur[5])
redis.call('SET', KEYS[1],
  '{"version":' .. string.format('%d', cur[1]) .. ',"updated_at":"' .. cur[2]
  .. '","fence":' .. string.format('%d', token) .. ',"codec":"' .. cur[4] .. '"' .. rest,
  'KEEPTTL')
return token
"""
)

NEXT_FENCE: Final = """
-- KEYS[1] the run's fencing counter. ARGV[1] the fence already stored with the state,
-- ARGV[2] counter ttl ms. Returns a fresh token: above the stored fence, above every
-- token handed out before, and never below the server's clock in microseconds, so a
-- restart that loses the counter (and the state) cannot hand out an old token again.
local t = redis.call('INCR', KEYS[1])
local now = redis.call('TIME')
local floor = math.max(tonumber(ARGV[1]) + 1, tonumber(now[1]) * 1000000 + tonumber(now[2]))
if t < floor then
  t = floor
  redis.call('SET', KEYS[1], string.format('%d', t))
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return t
"""

EXTEND_LOCK: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

RELEASE_LOCK: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
