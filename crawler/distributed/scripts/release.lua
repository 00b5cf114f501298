-- Let go of a lock only if this worker holds it. KEYS: lock. ARGV: worker.
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
