#!/usr/bin/env bash
# CPU per request of two builds of `baton dev` (release, in memory), alternating, ROUNDS rounds of
# DURATION seconds per workload: cycles/s from baton-bench, the node's CPU (user + system) from /proc.
# Usage: Benchmarks/cpu-per-request.sh OLD_BIN_DIR NEW_BIN_DIR   (each with baton; the load comes
# from NEW_BIN_DIR's baton-bench)
set -euo pipefail
old=$1 new=$2
bench="$new/baton-bench"
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
tick=$(getconf CLK_TCK)
run() {  # run LABEL BIN PORT WORKLOAD CONNECTIONS PIPELINE REQUESTS_PER_CYCLE
    "$2/baton" dev --port "$3" --no-metrics --log-level error &
    local pid=$!
    sleep 1
    "$bench" load --endpoint "127.0.0.1:$3" --workload "$4" --connections "$5" --pipeline "$6" --duration 1 --warmup 0 --json >/dev/null
    local t0 t1 json
    t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    json=$("$bench" load --endpoint "127.0.0.1:$3" --workload "$4" --connections "$5" --pipeline "$6" --duration "$DURATION" --warmup 0 --json)
    t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    python3 -c "
import json, sys
r = json.loads(sys.argv[1])
requests = r['cycles'] * $7
print('%-3s %-5s %3d clients x %d: %8.0f cycles/s, %6.2f us CPU/request' % ('$1', '$4', $5, $6, r['cyclesPerSecond'], ($t1 - $t0) / $tick * 1e6 / requests))
" "$json"
}
for round in $(seq "$ROUNDS"); do
    echo "round $round"
    for w in "lock 50 1 2" "job 16 1 3" "job 16 8 3" "job 1 1 3"; do
        set -- $w
        run old "$old" 17770 "$1" "$2" "$3" "$4"
        run new "$new" 17771 "$1" "$2" "$3" "$4"
    done
done
