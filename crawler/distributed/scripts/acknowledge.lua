-- Requests a worker is done with leave its in-flight hash with the counts they added.
-- KEYS: crawl, in-flight. ARGV: id, seeded ('1' or ''), first error (or ''), the number n of counters,
-- n names, n deltas, then the payloads.
local n = tonumber(ARGV[4])
for i = 1, n do redis.call('HINCRBY', KEYS[1], 'count:' .. ARGV[4 + i], ARGV[4 + n + i]) end
if ARGV[3] ~= '' then redis.call('HSETNX', KEYS[1], 'first_error', ARGV[3]) end
if ARGV[2] == '1' then redis.call('HSET', KEYS[1], 'seeded', 1) end
for i = 5 + 2 * n, #ARGV do redis.call('HDEL', KEYS[2], ARGV[i]) end
return 1
