/* engine_redis_lua: the Lua scripts of the Redis engine (engine_redis.c),
 * each one atomic step on one channel's keys (KEYS are hash-tagged by the
 * channel). Loaded with SCRIPT LOAD when the command connection comes up,
 * called by EVALSHA. */
#ifndef PLAZA_ENGINE_REDIS_LUA_H
#define PLAZA_ENGINE_REDIS_LUA_H

/* publish. KEYS: meta, stream. ARGV: payload, history size, history TTL
 * (ms, 0 = none), time (unix ms), pub/sub channel, flags, a new epoch (used
 * if the channel has none: a new stream), meta TTL (ms, 0 = none), the
 * publish command (PUBLISH, or SPUBLISH on a cluster).
 * Returns {offset, epoch}; the event carries the same. */
#define REDIS_LUA_PUBLISH                                                              \
    "local meta, stream = KEYS[1], KEYS[2]\n"                                          \
    "local epoch = redis.call('HGET', meta, 'e')\n"                                    \
    "if not epoch then\n"                                                              \
    "  epoch = ARGV[7]\n"                                                              \
    "  redis.call('HSET', meta, 'e', epoch)\n"                                         \
    "  redis.call('DEL', stream)\n"                                                    \
    "end\n"                                                                            \
    "local top = redis.call('HINCRBY', meta, 't', 1)\n"                                \
    "redis.call('XADD', stream, 'MAXLEN', ARGV[2], top .. '-1', 'p', ARGV[1], 't', ARGV[4], 'f', ARGV[6])\n" \
    "local ttl, mttl = tonumber(ARGV[3]), tonumber(ARGV[8])\n"                         \
    "if mttl > 0 and ttl > mttl then mttl = ttl end\n"                                 \
    "if ttl > 0 then redis.call('PEXPIRE', stream, ttl)\n"                             \
    "elseif mttl > 0 then redis.call('PEXPIRE', stream, mttl) end\n"                   \
    "if mttl > 0 then redis.call('PEXPIRE', meta, mttl) end\n"                         \
    "redis.call(ARGV[9], ARGV[5], 'P' .. top .. ' ' .. epoch .. ' ' .. ARGV[4] .. ' ' .. ARGV[6] .. ' ' .. ARGV[1])\n" \
    "return {top, epoch}\n"

/* history. KEYS: meta, stream. ARGV: limit (0 = only the position, -1 =
 * all), has since (1/0), since offset, reverse (1/0), a new epoch (a
 * channel without one gets it, top 0), meta TTL (ms). Returns {top, epoch,
 * entries}: entries as XRANGE gives them, offset > since (or < since,
 * newest first, when reverse). */
#define REDIS_LUA_HISTORY                                                              \
    "local meta, stream = KEYS[1], KEYS[2]\n"                                          \
    "local epoch = redis.call('HGET', meta, 'e')\n"                                    \
    "if not epoch then\n"                                                              \
    "  epoch = ARGV[5]\n"                                                              \
    "  redis.call('HSET', meta, 'e', epoch, 't', 0)\n"                                 \
    "  redis.call('DEL', stream)\n"                                                    \
    "  local mttl = tonumber(ARGV[6])\n"                                               \
    "  if mttl > 0 then redis.call('PEXPIRE', meta, mttl) end\n"                       \
    "end\n"                                                                            \
    "local top = tonumber(redis.call('HGET', meta, 't') or '0')\n"                     \
    "local limit = tonumber(ARGV[1])\n"                                                \
    "local entries = {}\n"                                                             \
    "if limit ~= 0 then\n"                                                             \
    "  local count = {}\n"                                                             \
    "  if limit > 0 then count = {'COUNT', limit} end\n"                               \
    "  if ARGV[4] == '1' then\n"                                                       \
    "    if not (ARGV[2] == '1' and tonumber(ARGV[3]) <= 1) then\n"                    \
    "      local hi = '+'\n"                                                           \
    "      if ARGV[2] == '1' then hi = '(' .. ARGV[3] .. '-0' end\n"                   \
    "      entries = redis.call('XREVRANGE', stream, hi, '-', unpack(count))\n"        \
    "    end\n"                                                                        \
    "  else\n"                                                                         \
    "    local lo = '-'\n"                                                             \
    "    if ARGV[2] == '1' then lo = '(' .. ARGV[3] .. '-1' end\n"                     \
    "    entries = redis.call('XRANGE', stream, lo, '+', unpack(count))\n"             \
    "  end\n"                                                                          \
    "end\n"                                                                            \
    "return {top, epoch, entries}\n"

/* presence. KEYS: the hash (client -> user NUL info), the sorted set
 * (client by expiry). ARGV[1] = add (client, value, expires at, key TTL),
 * remove (client), get or sweep (now, pub/sub channel or "" for no leave,
 * publish command): both remove the expired entries, publishing a leave
 * for each when a channel is given; get returns the hash's fields and
 * values, sweep how many entries expired. */
#define REDIS_LUA_PRESENCE                                                             \
    "local h, z, op = KEYS[1], KEYS[2], ARGV[1]\n"                                     \
    "if op == 'add' then\n"                                                            \
    "  redis.call('HSET', h, ARGV[2], ARGV[3])\n"                                      \
    "  redis.call('ZADD', z, ARGV[4], ARGV[2])\n"                                      \
    "  redis.call('PEXPIRE', h, ARGV[5])\n"                                            \
    "  redis.call('PEXPIRE', z, ARGV[5])\n"                                            \
    "  return 1\n"                                                                     \
    "elseif op == 'remove' then\n"                                                     \
    "  redis.call('HDEL', h, ARGV[2])\n"                                               \
    "  redis.call('ZREM', z, ARGV[2])\n"                                               \
    "  return 1\n"                                                                     \
    "end\n"                                                                            \
    "local gone = redis.call('ZRANGEBYSCORE', z, '-inf', ARGV[2])\n"                   \
    "for i = 1, #gone do\n"                                                            \
    "  if ARGV[3] ~= '' then\n"                                                        \
    "    local v = redis.call('HGET', h, gone[i])\n"                                   \
    "    local nul = v and string.find(v, '\\0', 1, true)\n"                           \
    "    if nul then redis.call(ARGV[4], ARGV[3], 'L' .. string.sub(v, nul + 1)) end\n" \
    "  end\n"                                                                          \
    "  redis.call('HDEL', h, gone[i])\n"                                               \
    "end\n"                                                                            \
    "if #gone > 0 then redis.call('ZREMRANGEBYSCORE', z, '-inf', ARGV[2]) end\n"       \
    "if op == 'sweep' then return #gone end\n"                                         \
    "return redis.call('HGETALL', h)\n"

/* Maps. KEYS, per channel: meta, stream, state (hash: key -> "<offset>
 * <time> <version> <version epoch length> <version epoch><payload>"), keys
 * (a sorted set of the keys, score 0: pages in byte order by ZRANGEBYLEX),
 * expiry (a sorted set: key -> expires at, ms). The meta hash also keeps
 * the map's stream size (ss) and TTL (st) from its last write, for the
 * changes that expiry makes. Every change (write, removal, expiry, clear)
 * takes the next offset, goes to the stream when the map keeps one (field
 * k: the key; f: 1 a removal), else is flagged unstreamed (2), and is
 * published as "M<offset> <epoch> <time> <flags> <key length> <key><payload>".
 * The suppression codes are engine.h's ENGINE_SUPPRESS_* (1 idempotency,
 * 2 version, 3 key exists, 4 key not found, 5 position mismatch). */
#define REDIS_LUA_MAP_COMMON \
    "local meta, stream, h, ks, x = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]\n" \
    "local function epoch_of(new)\n" \
    "  local e = redis.call('HGET', meta, 'e')\n" \
    "  if not e then\n" \
    "    e = new\n" \
    "    redis.call('HSET', meta, 'e', e, 't', 0)\n" \
    "    redis.call('DEL', stream)\n" \
    "  end\n" \
    "  return e\n" \
    "end\n" \
    "local function change(epoch, now, key, payload, flags, pubch, verb)\n" \
    "  local top = redis.call('HINCRBY', meta, 't', 1)\n" \
    "  local ss = tonumber(redis.call('HGET', meta, 'ss') or '0')\n" \
    "  if ss > 0 then\n" \
    "    redis.call('XADD', stream, 'MAXLEN', ss, top .. '-1', 'p', payload, 't', now, 'f', flags, 'k', key)\n" \
    "  else\n" \
    "    flags = flags + 2\n" \
    "  end\n" \
    "  redis.call(verb, pubch, 'M' .. top .. ' ' .. epoch .. ' ' .. now .. ' ' .. flags .. ' ' .. #key .. ' ' .. key .. payload)\n" \
    "  return top\n" \
    "end\n" \
    "local function expire(epoch, now, pubch, verb)\n" \
    "  local gone = redis.call('ZRANGEBYSCORE', x, '-inf', now)\n" \
    "  for i = 1, #gone do\n" \
    "    redis.call('HDEL', h, gone[i])\n" \
    "    redis.call('ZREM', ks, gone[i])\n" \
    "    redis.call('ZREM', x, gone[i])\n" \
    "    change(epoch, now, gone[i], '', 1, pubch, verb)\n" \
    "  end\n" \
    "end\n" \
    "local function keep(mttl)\n" \
    "  local st = tonumber(redis.call('HGET', meta, 'st') or '0')\n" \
    "  if st > 0 then redis.call('PEXPIRE', stream, st) elseif mttl > 0 then redis.call('PEXPIRE', stream, mttl) end\n" \
    "  if mttl > 0 then\n" \
    "    for _, k in ipairs({meta, h, ks, x}) do redis.call('PEXPIRE', k, mttl) end\n" \
    "  end\n" \
    "end\n" \
    "local function newer(a, b)\n" \
    "  return #a > #b or (#a == #b and a > b)\n" \
    "end\n" \
    ""

/* map_write. KEYS: meta, stream, state, keys, expiry, the idempotency key.
 * ARGV: key, remove (1/0), payload, stream size, stream TTL (ms), key TTL
 * (ms), key mode (0 any, 1 if new, 2 if exists), refresh the TTL when
 * suppressed as existing (1/0), version ("0" = none), version epoch, has
 * expected (1/0), expected offset, expected epoch, use the idempotency key
 * (1/0), its TTL (ms), now (ms), a new epoch, meta TTL (ms), pub/sub
 * channel, publish command. Returns {top, epoch, suppressed}. */
#define REDIS_LUA_MAP_WRITE REDIS_LUA_MAP_COMMON \
    "local now = ARGV[16]\n" \
    "redis.call('HSET', meta, 'ss', ARGV[4], 'st', ARGV[5])\n" \
    "local epoch = epoch_of(ARGV[17])\n" \
    "expire(epoch, now, ARGV[19], ARGV[20])\n" \
    "local key = ARGV[1]\n" \
    "local why = 0\n" \
    "if ARGV[14] == '1' and redis.call('EXISTS', KEYS[6]) == 1 then why = 1 end\n" \
    "local cur = redis.call('HGET', h, key)\n" \
    "local off, ver, vep = '0', '0', ''\n" \
    "if cur then\n" \
    "  local o, t, v, n, rest = string.match(cur, '^(%d+) (%d+) (%d+) (%d+) ()')\n" \
    "  off, ver, vep = o, v, string.sub(cur, rest, rest + tonumber(n) - 1)\n" \
    "end\n" \
    "if why == 0 then\n" \
    "  if ARGV[11] == '1' and (not cur or off ~= ARGV[12] or (ARGV[13] ~= '' and ARGV[13] ~= epoch)) then why = 5\n" \
    "  elseif ARGV[2] == '1' then if not cur then why = 4 end\n" \
    "  elseif ARGV[7] == '1' and cur then why = 3\n" \
    "  elseif ARGV[7] == '2' and not cur then why = 4\n" \
    "  elseif ARGV[9] ~= '0' and cur and ver ~= '0' and vep == ARGV[10] and not newer(ARGV[9], ver) then why = 2\n" \
    "  end\n" \
    "end\n" \
    "local top = redis.call('HGET', meta, 't')\n" \
    "if why ~= 0 then\n" \
    "  if why == 3 and ARGV[8] == '1' and tonumber(ARGV[6]) > 0 then\n" \
    "    redis.call('ZADD', x, tonumber(now) + tonumber(ARGV[6]), key)\n" \
    "  end\n" \
    "  return {top, epoch, why}\n" \
    "end\n" \
    "if ARGV[2] == '1' then\n" \
    "  redis.call('HDEL', h, key)\n" \
    "  redis.call('ZREM', ks, key)\n" \
    "  redis.call('ZREM', x, key)\n" \
    "  top = change(epoch, now, key, '', 1, ARGV[19], ARGV[20])\n" \
    "else\n" \
    "  top = change(epoch, now, key, ARGV[3], 0, ARGV[19], ARGV[20])\n" \
    "  local v, vp = ARGV[9], ARGV[10]\n" \
    "  if v == '0' then v, vp = ver, vep end\n" \
    "  redis.call('HSET', h, key, top .. ' ' .. now .. ' ' .. v .. ' ' .. #vp .. ' ' .. vp .. ARGV[3])\n" \
    "  redis.call('ZADD', ks, 0, key)\n" \
    "  if tonumber(ARGV[6]) > 0 then redis.call('ZADD', x, tonumber(now) + tonumber(ARGV[6]), key)\n" \
    "  else redis.call('ZREM', x, key) end\n" \
    "end\n" \
    "if ARGV[14] == '1' then redis.call('SET', KEYS[6], '1', 'PX', ARGV[15]) end\n" \
    "keep(tonumber(ARGV[18]))\n" \
    "return {top, epoch, 0}\n"

/* map reads. KEYS: meta, stream, state, keys, expiry. ARGV: op (state,
 * stats, clear), now, a new epoch, pub/sub channel, publish command; for
 * state: one key only (1/0), limit (-1 all, 0 none), the key, the cursor
 * (the last key of the previous page, "" = from the first). Expired keys
 * go first (changes of their own); clear removes every key, each a change.
 * Returns {top, epoch, entries {key, value, ...}, next cursor or ""} for
 * state, {top, epoch, number of keys} for stats and clear. */
#define REDIS_LUA_MAP_READ REDIS_LUA_MAP_COMMON \
    "local op, now = ARGV[1], ARGV[2]\n" \
    "local epoch = epoch_of(ARGV[3])\n" \
    "expire(epoch, now, ARGV[4], ARGV[5])\n" \
    "if op == 'clear' then\n" \
    "  local all = redis.call('ZRANGEBYLEX', ks, '-', '+')\n" \
    "  for i = 1, #all do change(epoch, now, all[i], '', 1, ARGV[4], ARGV[5]) end\n" \
    "  redis.call('DEL', h, ks, x)\n" \
    "end\n" \
    "local top = redis.call('HGET', meta, 't')\n" \
    "if op ~= 'state' then return {top, epoch, redis.call('ZCARD', ks)} end\n" \
    "local keys, more = {}, ''\n" \
    "local limit = tonumber(ARGV[7])\n" \
    "if ARGV[6] == '1' then\n" \
    "  keys = {ARGV[8]}\n" \
    "elseif limit ~= 0 then\n" \
    "  local lo = '-'\n" \
    "  if ARGV[9] ~= '' then lo = '(' .. ARGV[9] end\n" \
    "  if limit < 0 then\n" \
    "    keys = redis.call('ZRANGEBYLEX', ks, lo, '+')\n" \
    "  else\n" \
    "    keys = redis.call('ZRANGEBYLEX', ks, lo, '+', 'LIMIT', 0, limit + 1)\n" \
    "    if #keys > limit then keys[#keys] = nil; more = keys[#keys] end\n" \
    "  end\n" \
    "end\n" \
    "local out = {}\n" \
    "for i = 1, #keys, 1000 do\n" \
    "  local part = {unpack(keys, i, math.min(i + 999, #keys))}\n" \
    "  local vals = redis.call('HMGET', h, unpack(part))\n" \
    "  for j = 1, #part do\n" \
    "    if vals[j] then out[#out + 1] = part[j]; out[#out + 1] = vals[j] end\n" \
    "  end\n" \
    "end\n" \
    "return {top, epoch, out, more}\n"

/* Boards. KEYS: meta, stream, the bitfield (a string, rows of packed
 * pixels as engine.h describes: BITFIELD's bit offsets count from a byte's
 * high bit, as PNG packs indexed colours). */

/* board batch: the pixels set, then the batch published as the publish
 * script publishes (flags 4: a board's batch). ARGV: the publish script's
 * nine (payload = the batch's records), the BITFIELD type (u4 or u8), then
 * bit offset and colour per pixel, in write order. */
#define REDIS_LUA_BOARD_BATCH \
    "local bf = KEYS[3]\n" \
    "if redis.call('HEXISTS', KEYS[1], 'e') == 0 then redis.call('DEL', bf) end\n" \
    "local args = {}\n" \
    "for i = 11, #ARGV, 2 do\n" \
    "  args[#args + 1] = 'SET'\n" \
    "  args[#args + 1] = ARGV[10]\n" \
    "  args[#args + 1] = ARGV[i]\n" \
    "  args[#args + 1] = ARGV[i + 1]\n" \
    "  if #args >= 4000 then redis.call('BITFIELD', bf, unpack(args)); args = {} end\n" \
    "end\n" \
    "if #args > 0 then redis.call('BITFIELD', bf, unpack(args)) end\n" \
    "if tonumber(ARGV[8]) > 0 then redis.call('PEXPIRE', bf, ARGV[8]) end\n" \
    REDIS_LUA_PUBLISH

/* board snapshot. ARGV: a new epoch (a board never written gets it, top
 * 0), meta TTL (ms). Returns {top, epoch, bitfield}: every batch up to top
 * is in the bitfield (one atomic read). */
#define REDIS_LUA_BOARD_SNAPSHOT \
    "local meta, stream, bf = KEYS[1], KEYS[2], KEYS[3]\n" \
    "local epoch = redis.call('HGET', meta, 'e')\n" \
    "if not epoch then\n" \
    "  epoch = ARGV[1]\n" \
    "  redis.call('HSET', meta, 'e', epoch, 't', 0)\n" \
    "  redis.call('DEL', stream, bf)\n" \
    "  if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', meta, ARGV[2]) end\n" \
    "end\n" \
    "return {tonumber(redis.call('HGET', meta, 't') or '0'), epoch, redis.call('GET', bf) or ''}\n"

/* cooldown. KEYS: the user's cooldown key. ARGV: the cooldown (ms).
 * Returns 0 (they may write: it starts again) or the ms they must wait. */
#define REDIS_LUA_COOLDOWN \
    "if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end\n" \
    "local left = redis.call('PTTL', KEYS[1])\n" \
    "if left < 1 then left = 1 end\n" \
    "return left\n"

#endif
