-- Hold a request back until the rest of the crawl is done.
-- KEYS: crawl, deferred. ARGV: id, fingerprint, payload.
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
