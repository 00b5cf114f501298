-- Whether this worker is to seed the queue now: nobody has, nobody is.
-- KEYS: crawl, starting lock. ARGV: id, worker, lock seconds.
if redis.call('HGET', KEYS[1], 'seeded') ~= '0' then return false end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'EX', ARGV[3]) then return 1 end
return false
