#!/usr/bin/env python3
"""The lock cycle from Python: Baton's client against redis-py, on the same machine, in the same run.

Each of --threads threads takes a random key of --keys for 30 s and releases it, again and again,
for --seconds: Baton's LOCK_ACQUIRE (try) and LOCK_RELEASE through one shared `baton.Client`, and
redis-py's `SET key token NX PX 30000` and a Lua compare-and-delete (EVALSHA) through one shared
connection pool. A busy key is a miss: counted, not a cycle. Prints cycles per second for each.

    python3 Benchmarks/python_lock.py baton 127.0.0.1:7700
    python3 Benchmarks/python_lock.py redis 127.0.0.1:6379
"""

import argparse
import json
import random
import threading
import time
import uuid

RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


def run(target: str, endpoint: str, threads: int, keys: int, seconds: float) -> dict:
    if target == "baton":
        import baton

        client = baton.Client([endpoint], name="python-bench")

        def cycle(key: str) -> bool:
            got = client.acquire_lock(key, ttl=30)
            if not got.granted:
                return False
            client.release_lock(key, got.token)
            return True

        close = client.close
    else:
        import redis

        host, _, port = endpoint.rpartition(":")
        pool = redis.ConnectionPool(host=host, port=int(port), max_connections=threads)
        r = redis.Redis(connection_pool=pool)
        release = r.register_script(RELEASE)

        def cycle(key: str) -> bool:
            token = uuid.uuid4().hex
            if not r.set(key, token, nx=True, px=30000):
                return False
            release(keys=[key], args=[token])
            return True

        close = pool.disconnect
    counts = [0] * threads
    misses = [0] * threads
    stop = threading.Event()

    def loop(i: int) -> None:
        rng = random.Random(i)
        while not stop.is_set():
            if cycle(f"bench-{rng.randrange(keys)}"):
                counts[i] += 1
            else:
                misses[i] += 1

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    start = time.monotonic()
    for w in workers:
        w.start()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join()
    elapsed = time.monotonic() - start
    close()
    return {"target": target, "cycles_per_second": round(sum(counts) / elapsed), "misses": sum(misses), "threads": threads}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("target", choices=["baton", "redis"])
    p.add_argument("endpoint")
    p.add_argument("--threads", type=int, default=16)
    p.add_argument("--keys", type=int, default=10000)
    p.add_argument("--seconds", type=float, default=10)
    a = p.parse_args()
    print(json.dumps(run(a.target, a.endpoint, a.threads, a.keys, a.seconds)))


if __name__ == "__main__":
    main()
