#!/usr/bin/env bash
# Heap allocations a node makes per lock cycle and per job cycle, and per second idle (issue 38):
# Tests/AllocationCounter/malloc-counter.c preloaded into `baton dev` (in memory), one baton-bench
# client for 2 s per workload, the counts read before and after (SIGURG) and divided by the cycles.
# Usage: Benchmarks/allocations.sh [BIN_DIR ...]   (default: this build's release binaries; give an
# older build's bin directory too to compare, each with its own baton-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
    swift build -c release --product baton >/dev/null
    swift build -c release --product baton-bench >/dev/null
    set -- .build/release
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc=$(command -v clang || echo /opt/swift/usr/bin/clang)
"$cc" -O2 -shared -fPIC -o "$work/libmalloc-counter.so" Tests/AllocationCounter/malloc-counter.c
port=17760
for bin in "$@"; do
    counts="$work/counts-$port"
    BATON_MALLOC_COUNTS="$counts" LD_PRELOAD="$work/libmalloc-counter.so" "$bin/baton" dev --port $port --no-metrics --log-level error &
    pid=$!
    sleep 1
    allocations() { kill -URG $pid; sleep 0.2; awk '{print $2 + 0}' "$counts"; }
    "$bin/baton-bench" load --endpoint 127.0.0.1:$port --workload lock --connections 1 --duration 1 --warmup 0 --json >/dev/null
    for workload in lock job; do
        a=$(allocations)
        cycles=$("$bin/baton-bench" load --endpoint 127.0.0.1:$port --workload $workload --connections 1 --duration 2 --warmup 0 --json |
            python3 -c 'import json, sys; print(json.load(sys.stdin)["cycles"])')
        b=$(allocations)
        echo "$bin: $workload cycle: $(python3 -c "print(f'{($b - $a) / $cycles:.2f}')") allocations ($cycles cycles)"
    done
    a=$(allocations); sleep 2; b=$(allocations)
    echo "$bin: idle: $(( (b - a) / 2 )) allocations a second"
    kill $pid; wait $pid 2>/dev/null || true
    port=$((port + 1))
done
