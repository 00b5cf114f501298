-- One worker, the first to ask, finishes the run. KEYS: crawl. ARGV: id, worker.
return redis.call('HSETNX', KEYS[1], 'finished_by', ARGV[2])
