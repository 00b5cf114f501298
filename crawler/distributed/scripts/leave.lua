-- This worker leaves: what it holds goes back on the queue (if the crawl is still the one it joined).
-- KEYS: crawl, queue, in-flight, workers. ARGV: id, worker.
if redis.call('HGET', KEYS[1], 'id') == ARGV[1] then
  local held = redis.call('HGETALL', KEYS[3])
  for i = 1, #held, 2 do redis.call('ZADD', KEYS[2], held[i + 1], held[i]) end
end
redis.call('DEL', KEYS[3])
redis.call('SREM', KEYS[4], ARGV[2])
return 1
