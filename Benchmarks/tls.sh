#!/usr/bin/env bash
# What TLS (and authentication) costs: the lock workload against plaintext and TLS, on one node in
# memory and on three nodes with fsync, and Redis with and without TLS, in one run, alternating
# ROUNDS times (default 3). Issue 20's targets: TLS costs at most 30 % of plaintext throughput, and
# Baton with TLS is at least 1.0x Redis with TLS on the lock workload.
#
#   Benchmarks/tls.sh                     # DURATION=10 s a row, ROUNDS=3
#   DURATION=5 ROUNDS=2 Benchmarks/tls.sh
#
# Certificates come from deploy/make-certs.sh (for 127.0.0.1); Redis is Debian's redis-server, built
# with TLS (--tls-port). Everything listens on 127.0.0.1 and is stopped at the end. Prints a Markdown
# table (also written to $OUT) of the medians, with each round's figure.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-50}
OUT=${OUT:-Benchmarks/tls-last-run.md}
export PATH="$PATH:/opt/swift/usr/bin"

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v openssl >/dev/null || need+=(openssl)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "building (release)" >&2
for p in baton baton-bench batonctl; do swift build -c release --product "$p" >/dev/null; done
BIN=$(swift build -c release --show-bin-path)

WORK=$(mktemp -d /tmp/baton-tls.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
start() { local name=$1; shift; "$@" >"$WORK/$name.log" 2>&1 & PIDS+=($!); }
stop_all() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}
wait_port() {
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
    echo "nothing listens on port $1" >&2; return 1
}

deploy/make-certs.sh "$WORK/etc" 127.0.0.1 127.0.0.1 127.0.0.1 2>/dev/null
ETC=$WORK/etc
TOKEN=$(cat "$ETC/admin.token")
ROWS=$WORK/rows.jsonl
: >"$ROWS"

bench() {  # bench ROW ROUND PORT [baton-bench options...]
    local row=$1 round=$2 port=$3; shift 3
    local json
    json=$("$BIN/baton-bench" --endpoint "127.0.0.1:$port" --workload lock --connections "$CLIENTS" \
        --duration "$DURATION" --warmup "$WARMUP" --json "$@")
    python3 -c 'import json,sys; r=json.loads(sys.argv[3]); r["row"]=sys.argv[1]; r["round"]=int(sys.argv[2]); print(json.dumps(r))' \
        "$row" "$round" "$json" >>"$ROWS"
    echo "  round $round, $row: $(tail -1 "$ROWS" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("{:,.0f} cycles/s, {} errors".format(r["cyclesPerSecond"], r["errors"]))')" >&2
}

one_node() {  # one_node ROUND: plaintext, TLS, TLS with authentication; in memory, as Redis runs here
    local round=$1 kind port=18700 security
    for kind in plaintext TLS "TLS and authentication"; do
        security=""
        [ "$kind" != plaintext ] && security="\"tls\": {\"certificateFile\": \"$ETC/baton-1.pem\", \"keyFile\": \"$ETC/baton-1-key.pem\"},"
        [ "$kind" = "TLS and authentication" ] && security+="\"auth\": {\"adminTokenFile\": \"$ETC/admin.token\"},"
        echo "{\"port\": $port, \"metricsPort\": 0, \"dataDirectory\": null, $security \"nodeID\": \"one\"}" >"$WORK/one.json"
        start one "$BIN/baton" serve --config "$WORK/one.json" --log-level error
        wait_port $port
        case $kind in
        plaintext) bench "one node in memory, plaintext" "$round" $port ;;
        TLS) bench "one node in memory, TLS" "$round" $port --cacert "$ETC/ca.pem" ;;
        *)
            for _ in $(seq 1 50); do  # until the admin token is installed
                "$BIN/batonctl" --endpoints "127.0.0.1:$port" --cacert "$ETC/ca.pem" --token "$TOKEN" status >/dev/null 2>&1 && break
                sleep 0.1
            done
            bench "one node in memory, TLS and authentication" "$round" $port --cacert "$ETC/ca.pem" --token "$TOKEN" ;;
        esac
        stop_all
        port=$((port + 1))
    done
}

redis() {  # redis ROUND: plaintext and TLS, no persistence
    local round=$1
    start redis-plain redis-server --port 18379 --save "" --appendonly no
    wait_port 18379
    bench "Redis, plaintext" "$round" 18379 --target redis
    stop_all
    start redis-tls redis-server --port 0 --tls-port 18380 --tls-cert-file "$ETC/baton-1.pem" --tls-key-file "$ETC/baton-1-key.pem" \
        --tls-ca-cert-file "$ETC/ca.pem" --tls-auth-clients no --save "" --appendonly no
    wait_port 18380
    bench "Redis, TLS" "$round" 18380 --target redis --cacert "$ETC/ca.pem"
    stop_all
}

three_nodes() {  # three_nodes ROUND SECURED: three members with fsync, plaintext or as deployed
    local round=$1 secured=$2 i members="" leader="" p
    for i in 1 2 3; do
        members+="{\"nodeID\": \"baton-$i\", \"host\": \"127.0.0.1\", \"port\": 1872$i, \"raftPort\": 1873$i}"
        [ $i -lt 3 ] && members+=", "
    done
    for i in 1 2 3; do
        rm -rf "$WORK/n$i"
        local security=""
        if [ "$secured" = yes ]; then
            security="\"tls\": {\"certificateFile\": \"$ETC/baton-$i.pem\", \"keyFile\": \"$ETC/baton-$i-key.pem\"},
              \"peerTLS\": {\"certificateFile\": \"$ETC/baton-$i.pem\", \"keyFile\": \"$ETC/baton-$i-key.pem\", \"caFile\": \"$ETC/ca.pem\"},
              \"auth\": {\"adminTokenFile\": \"$ETC/admin.token\"},"
        fi
        echo "{\"nodeID\": \"baton-$i\", \"port\": 1872$i, \"metricsPort\": 0, \"dataDirectory\": \"$WORK/n$i\", \"sync\": \"always\",
          $security \"cluster\": [$members]}" >"$WORK/n$i.json"
        start "n$i" "$BIN/baton" serve --config "$WORK/n$i.json" --log-level error
    done
    local ctl=()
    [ "$secured" = yes ] && ctl=(--cacert "$ETC/ca.pem" --token "$TOKEN")
    for _ in $(seq 1 100); do
        for p in 18721 18722 18723; do
            "$BIN/batonctl" --endpoints "127.0.0.1:$p" "${ctl[@]}" --output json status 2>/dev/null | grep -q '"role" : "leader"' && leader=$p
        done
        [ -n "$leader" ] && break
        sleep 0.1
    done
    [ -n "$leader" ] || { echo "no leader among the three members" >&2; exit 1; }
    if [ "$secured" = yes ]; then
        bench "three nodes with fsync, TLS (also between members) and authentication" "$round" "$leader" --cacert "$ETC/ca.pem" --token "$TOKEN"
    else
        bench "three nodes with fsync, plaintext" "$round" "$leader"
    fi
    stop_all
}

for round in $(seq 1 "$ROUNDS"); do
    echo "round $round of $ROUNDS" >&2
    one_node "$round"
    redis "$round"
    three_nodes "$round" no
    three_nodes "$round" yes
done

python3 - "$ROWS" "$DURATION" "$ROUNDS" "$CLIENTS" >"$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
order, by = [], {}
for r in rows:
    if r["row"] not in by: order.append(r["row"])
    by.setdefault(r["row"], []).append(r)
def median(row): return statistics.median(r["cyclesPerSecond"] for r in by[row])
print(f"Lock workload (acquire + release a random key of 10,000), {sys.argv[4]} clients, {sys.argv[2]} s a row, "
      f"{sys.argv[3]} rounds alternating; cycles/s, median (each round).\n")
print("| row | cycles/s | rounds | p50 ms | p99 ms | errors |")
print("|---|---:|---|---:|---:|---:|")
for row in order:
    rs = by[row]
    p50 = statistics.median(r["latencyMicroseconds"]["p50"] for r in rs) / 1000
    p99 = statistics.median(r["latencyMicroseconds"]["p99"] for r in rs) / 1000
    each = " / ".join("{:,.0f}".format(r["cyclesPerSecond"]) for r in rs)
    errors = sum(r["errors"] for r in rs)
    print(f"| {row} | {median(row):,.0f} | {each} | {p50:.2f} | {p99:.2f} | {errors} |")
def ratio(a, b): return median(a) / median(b)
print()
print(f"- TLS against plaintext, one node: {ratio('one node in memory, TLS', 'one node in memory, plaintext'):.2f}x "
      f"(with authentication too: {ratio('one node in memory, TLS and authentication', 'one node in memory, plaintext'):.2f}x)")
print(f"- TLS against plaintext, three nodes with fsync: "
      f"{ratio('three nodes with fsync, TLS (also between members) and authentication', 'three nodes with fsync, plaintext'):.2f}x")
print(f"- Baton with TLS against Redis with TLS: {ratio('one node in memory, TLS', 'Redis, TLS'):.2f}x "
      f"(plaintext: {ratio('one node in memory, plaintext', 'Redis, plaintext'):.2f}x)")
PY
cat "$OUT"
