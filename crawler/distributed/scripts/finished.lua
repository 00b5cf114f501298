-- The crawl is over: it was replaced or removed, or it is seeded, its queue is empty, nobody holds
-- anything and no deferred request is left. Deferred requests not seen meanwhile are queued at that point.
-- KEYS: crawl, queue, workers, seen, deferred. ARGV: id, in-flight prefix.
if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then return 1 end
if redis.call('HGET', KEYS[1], 'seeded') ~= '1' then return 0 end
if redis.call('ZCARD', KEYS[2]) > 0 then return 0 end
for _, worker in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if redis.call('HLEN', ARGV[2] .. worker) > 0 then return 0 end
end
local deferred = redis.call('HGETALL', KEYS[5])
if #deferred == 0 then return 1 end
for i = 1, #deferred, 2 do
  if redis.call('SADD', KEYS[4], deferred[i]) == 1 then redis.call('ZADD', KEYS[2], 0, deferred[i + 1]) end
end
redis.call('DEL', KEYS[5])
return 0
