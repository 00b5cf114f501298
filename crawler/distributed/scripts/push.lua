-- Queue a request, unless a fingerprint is given and the crawl has seen it: the check and the push
-- are one step, so a worker killed between them cannot leave a request marked seen that nobody fetches.
-- KEYS: crawl, queue, seen. ARGV: id, score, payload, fingerprint (or ''), seen ttl.
if ARGV[4] ~= '' then
  if redis.call('SADD', KEYS[3], ARGV[4]) == 0 then return false end
  redis.call('EXPIRE', KEYS[3], ARGV[5])
end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1
