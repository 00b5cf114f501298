-- This worker is alive. What silent workers held goes back on the queue, checked and moved in one
-- step, so a worker that beats again meanwhile keeps what it holds. Returns how many requests moved.
-- KEYS: crawl, queue, workers, seen. ARGV: id, worker, seconds, heartbeat prefix, in-flight prefix, seen ttl.
redis.call('SET', ARGV[4] .. ARGV[2], 'alive', 'EX', ARGV[3])
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('EXPIRE', KEYS[4], ARGV[6])
local moved = 0
for _, worker in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if redis.call('EXISTS', ARGV[4] .. worker) == 0 then
    local held = redis.call('HGETALL', ARGV[5] .. worker)
    for i = 1, #held, 2 do
      redis.call('ZADD', KEYS[2], held[i + 1], held[i])
      moved = moved + 1
    end
    redis.call('DEL', ARGV[5] .. worker)
    redis.call('SREM', KEYS[3], worker)
  end
end
return moved
