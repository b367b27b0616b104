#!/usr/bin/env bash
# Three Baton nodes on loopback, for trying a cluster out on one machine.
#
#   deploy/local-cluster.sh            # start; Ctrl-C stops all three
#   DIR=/tmp/bc deploy/local-cluster.sh
#
# Clients: 127.0.0.1:7701, 127.0.0.1:7702, 127.0.0.1:7703 (Raft between nodes on 7711-7713,
# metrics on 9771-9773). Data lives in $DIR (default .local-cluster/), so a node you kill with
# `kill -9` and start again with the command printed below comes back with its state.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"
DIR=${DIR:-.local-cluster}
mkdir -p "$DIR"
swift build --product baton >&2
BIN=$(swift build --show-bin-path)/baton

members='[{"nodeID": "baton-1", "host": "127.0.0.1", "port": 7701, "raftPort": 7711},
          {"nodeID": "baton-2", "host": "127.0.0.1", "port": 7702, "raftPort": 7712},
          {"nodeID": "baton-3", "host": "127.0.0.1", "port": 7703, "raftPort": 7713}]'
PIDS=()
for i in 1 2 3; do
    cat >"$DIR/baton-$i.json" <<JSON
{"nodeID": "baton-$i", "host": "127.0.0.1", "port": 770$i, "metricsPort": 977$i,
 "dataDirectory": "$DIR/baton-$i", "cluster": $members}
JSON
    "$BIN" serve --config "$DIR/baton-$i.json" >"$DIR/baton-$i.log" 2>&1 &
    PIDS+=($!)
    echo "baton-$i: pid $!, clients 127.0.0.1:770$i, log $DIR/baton-$i.log, restart: $BIN serve --config $DIR/baton-$i.json" >&2
done
trap 'kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT INT TERM
echo "export BATON_ENDPOINTS=127.0.0.1:7701,127.0.0.1:7702,127.0.0.1:7703" >&2
echo "then: swift run batonctl status" >&2
wait
