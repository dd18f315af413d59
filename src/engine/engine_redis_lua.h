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

#endif
