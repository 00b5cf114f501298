-- Take the highest-priority request and hold it in the worker's in-flight hash, in one step; a worker
-- that holds something is always among the crawl's workers.
-- KEYS: crawl, queue, in-flight, workers. ARGV: id, worker.
local item = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #item == 0 then return false end
redis.call('ZREM', KEYS[2], item[1])
redis.call('HSET', KEYS[3], item[1], item[2])
redis.call('SADD', KEYS[4], ARGV[2])
return item[1]
