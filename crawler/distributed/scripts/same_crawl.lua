-- Prepended to every script that acts on a crawl (KEYS[1] the crawl's hash, ARGV[1] its id): a worker
-- lagging behind a finished crawl must not pop, queue, count or seed in the next one.
if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then return false end
