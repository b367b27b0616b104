#!/usr/bin/env bash
# Jobs a second through the batch commands (`baton-bench batches`), on one node in memory, one node
# with fsync and three members with fsync on loopback: each worker adds BATCH jobs in one request and
# then completes what it holds and claims BATCH more in one request (JOB_COMPLETE_BATCH), against the
# same with one JOB_COMPLETE per job (--complete-each, as protocol version 4 did), alternating.
#
#   Benchmarks/batches.sh                  # the release build of this checkout
#   BIN=/path/to/release/bin Benchmarks/batches.sh
#   ROUNDS=3 DURATION=5 WORKERS=8 BATCH=250 Benchmarks/batches.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-2}
WORKERS=${WORKERS:-8}
BATCH=${BATCH:-250}
if [ -z "${BIN:-}" ]; then
    swift build -c release --product baton >/dev/null
    swift build -c release --product baton-bench >/dev/null
    BIN=$(swift build -c release --show-bin-path)
fi

WORK=$(mktemp -d /tmp/baton-batches.XXXXXX)
PIDS=()
stop_all() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}
trap 'stop_all; rm -rf "$WORK"' EXIT

wait_port() { until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do sleep 0.1; done; }

measure() {  # measure LABEL ENDPOINTS: both modes, one after the other
    for mode in batch each; do
        local flag=""
        [ "$mode" = each ] && flag="--complete-each"
        local json
        json=$("$BIN/baton-bench" batches --endpoints "$2" --workers "$WORKERS" --batch "$BATCH" \
            --warmup "$WARMUP" --seconds "$DURATION" $flag --json)
        python3 -c "
import json, sys
r = json.loads(sys.argv[1])
print('%-36s %-26s %8d jobs/s' % (sys.argv[2], 'one JOB_COMPLETE per job' if sys.argv[3] == 'each' else 'JOB_COMPLETE_BATCH', r['jobsPerSecond']))
" "$json" "$1" "$mode"
    done
}

for round in $(seq "$ROUNDS"); do
    echo "round $round ($WORKERS workers, batches of $BATCH)"
    rm -rf "$WORK"/*
    "$BIN/baton" dev --port 17801 --no-metrics --log-level error & PIDS+=($!)
    wait_port 17801
    measure "one node in memory" 127.0.0.1:17801
    stop_all
    "$BIN/baton" dev --port 17802 --no-metrics --log-level error --data-dir "$WORK/fsync" & PIDS+=($!)
    wait_port 17802
    measure "one node with fsync" 127.0.0.1:17802
    stop_all
    members='[{"nodeID": "n1", "host": "127.0.0.1", "port": 17811, "raftPort": 17821},
              {"nodeID": "n2", "host": "127.0.0.1", "port": 17812, "raftPort": 17822},
              {"nodeID": "n3", "host": "127.0.0.1", "port": 17813, "raftPort": 17823}]'
    for i in 1 2 3; do
        echo "{\"nodeID\": \"n$i\", \"port\": 1781$i, \"metricsPort\": 0, \"dataDirectory\": \"$WORK/n$i\", \"cluster\": $members}" >"$WORK/n$i.json"
        "$BIN/baton" serve --config "$WORK/n$i.json" --log-level error & PIDS+=($!)
    done
    wait_port 17811; wait_port 17812; wait_port 17813
    measure "three members with fsync" 127.0.0.1:17811,127.0.0.1:17812,127.0.0.1:17813
    stop_all
done
