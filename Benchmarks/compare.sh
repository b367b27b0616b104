#!/usr/bin/env bash
# Side-by-side benchmark: Baton against Redis, beanstalkd and etcd on this machine, in one run.
#
#   Benchmarks/compare.sh                 # 10 s per row
#   DURATION=3 Benchmarks/compare.sh      # a quick look
#   VS=/path/to/old/release/bin Benchmarks/compare.sh
#                                         # this build against an older one (its `baton` in that
#                                         # directory), alternating, ROUNDS times (default 3): one
#                                         # node in memory (lock; renew over HTTP/2 and over TCP),
#                                         # one with fsync, three nodes with fsync; requests/s and
#                                         # the server's CPU time per request
#
# Installs the peers from Debian if they are missing, starts every server on 127.0.0.1, runs the same
# workload against Baton and against the matching peer with baton-bench, stops everything it started,
# and prints one Markdown table with the ratio Baton/peer per row (also written to $OUT).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
OUT=${OUT:-Benchmarks/last-run.md}
ETCD_PERF=${ETCD_PERF:-xl}          # etcdctl check perf --load; "none" skips etcd
export PATH="$PATH:/opt/swift/usr/bin"

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v beanstalkd >/dev/null || need+=(beanstalkd)
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
command -v python3 >/dev/null || need+=(python3)
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "building baton and baton-bench (release)" >&2
swift build -c release --product baton >/dev/null
swift build -c release --product baton-bench >/dev/null
swift build -c release --product batonctl >/dev/null
BIN=$(swift build -c release --show-bin-path)

WORK=$(mktemp -d /tmp/baton-compare.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

start() {  # start NAME CMD... : runs CMD in the background, logs to $WORK/NAME.log
    local name=$1; shift
    "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
}
stop_last() {
    local pid=${PIDS[-1]}
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset 'PIDS[-1]'
}
wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2
    return 1
}

# A server left over from an earlier run would answer on these ports and be measured instead of the
# one started here: refuse to start unless every port is free.
busy=()
for port in 11400 11401 12379 12380 16379 16380 17700 17701 17710 17721 17722 17723 17731 17732 17733 \
    17830 17831 17832 17833 17834 17835 22379 22380 32379 32380; do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && busy+=("$port")
done
if [ ${#busy[@]} -gt 0 ]; then
    echo "ports already in use: ${busy[*]}; stop what listens there (an earlier run?) and try again" >&2
    exit 1
fi

ROWS="$WORK/rows.jsonl"
: >"$ROWS"
bench() {  # bench ROW_LABEL SIDE TARGET PORT WORKLOAD CONNECTIONS PIPELINE
    local label=$1 side=$2 target=$3 port=$4 workload=$5 conns=$6 pipe=$7
    echo "  $label: $side ($target $workload, $conns clients, $pipe in flight)" >&2
    local json
    json=$("$BIN/baton-bench" --target "$target" --endpoint "127.0.0.1:$port" --workload "$workload" \
        --connections "$conns" --pipeline "$pipe" --duration "$DURATION" --warmup "$WARMUP" --json)
    python3 -c 'import json,sys; r=json.loads(sys.argv[3]); r["row"]=sys.argv[1]; r["side"]=sys.argv[2]; print(json.dumps(r))' \
        "$label" "$side" "$json" >>"$ROWS"
}

find_leader() {  # the client port (17721-17723) of the member that says it leads
    local leader="" p role
    for _ in $(seq 1 50); do
        for p in 17721 17722 17723; do
            role=$("$BIN/batonctl" --endpoints "127.0.0.1:$p" --output json status 2>/dev/null \
                | python3 -c 'import json,sys; print(json.load(sys.stdin)["nodes"][0]["role"])' 2>/dev/null || true)
            [ "$role" = leader ] && leader=$p
        done
        [ -n "$leader" ] && break
        sleep 0.2
    done
    echo "$leader"
}

# --- this build against an older one (VS=<its bin directory>) --------------------------------------
# The CPU time is the user + system time of the serving processes (/proc/<pid>/stat, over the whole
# run of baton-bench, warm-up included) divided by the requests of that time.
cpu_ticks() {  # cpu_ticks PID... : utime + stime, in clock ticks
    local total=0 pid
    for pid in "$@"; do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}
versus_row() {  # versus_row LABEL SIDE BIN PORT WORKLOAD CONNECTIONS PIPELINE PIDS...
    local label=$1 side=$2 bin=$3 port=$4 workload=$5 conns=$6 pipeline=$7; shift 7
    local before after json
    before=$(cpu_ticks "$@")
    json=$("$BIN/baton-bench" --target baton --endpoint "127.0.0.1:$port" --workload "$workload" \
        --connections "$conns" --pipeline "$pipeline" --duration "$DURATION" --warmup "$WARMUP" --json)
    after=$(cpu_ticks "$@")
    python3 -c 'import json,sys,os
r = json.loads(sys.argv[3]); ticks = int(sys.argv[5]) - int(sys.argv[4]); hz = os.sysconf("SC_CLK_TCK")
requests = r["requestsPerSecond"] * (float(sys.argv[6]) + float(sys.argv[7]))
r.update(row=sys.argv[1], side=sys.argv[2], cpuMicrosecondsPerRequest=ticks / hz * 1e6 / requests if requests else 0)
print(json.dumps(r))' "$label" "$side" "$json" "$before" "$after" "$DURATION" "$WARMUP" >>"$ROWS"
    echo "  $label, $side: $(tail -1 "$ROWS" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("{:,.0f} req/s, {:.1f} µs CPU/request".format(r["requestsPerSecond"], r["cpuMicrosecondsPerRequest"]))')" >&2
}
h2_renew() {  # h2_renew LABEL SIDE PIDS... : h2load renews one lease held on the HTTP/2 port 17710
    local label=$1 side=$2; shift 2
    local before after
    python3 - "$WORK" <<'PY'
import struct, sys
key = b"h2-bench"
head = struct.pack(">Q", 0) + struct.pack(">H", len(key)) + key
open(sys.argv[1] + "/acquire.bin", "wb").write(head + struct.pack(">H", 2) + b"h2" + struct.pack(">II", 3_600_000, 0))
PY
    curl -s --http2-prior-knowledge -X POST -H "content-type: application/x-baton" -H "baton-client-id: 1" \
        --data-binary "@$WORK/acquire.bin" -o "$WORK/granted.bin" http://127.0.0.1:17710/baton/v1/lock_acquire
    python3 - "$WORK" <<'PY'
import struct, sys
reply = open(sys.argv[1] + "/granted.bin", "rb").read()
assert reply[0] == 0, "the HTTP/2 benchmark's lock was not granted"
token = struct.unpack(">Q", reply[1:9])[0]
key = b"h2-bench"
open(sys.argv[1] + "/renew.bin", "wb").write(struct.pack(">Q", 0) + struct.pack(">H", len(key)) + key + struct.pack(">QI", token, 3_600_000))
PY
    before=$(cpu_ticks "$@")
    h2load -D "$DURATION" --warm-up-time="$WARMUP" -c 4 -m 16 -t 1 -H "content-type: application/x-baton" -H "baton-client-id: 2" \
        -d "$WORK/renew.bin" http://127.0.0.1:17710/baton/v1/lock_renew >"$WORK/h2load.txt" 2>&1
    after=$(cpu_ticks "$@")
    python3 - "$label" "$WORK/h2load.txt" "$side" "$before" "$after" "$DURATION" "$WARMUP" >>"$ROWS" <<'PY'
import json, os, re, sys
text = open(sys.argv[2]).read()
rate = float(re.search(r"finished in [0-9.]+s, ([0-9.]+) req/s", text).group(1))
m = re.search(r"requests: (\d+) total, \d+ started, \d+ done, \d+ succeeded, (\d+) failed, (\d+) errored", text)
mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", text).group(1)
ticks = int(sys.argv[5]) - int(sys.argv[4])
requests = rate * (float(sys.argv[6]) + float(sys.argv[7]))
print(json.dumps({"row": sys.argv[1], "side": sys.argv[3], "target": "baton over HTTP/2 (h2load)", "cyclesPerSecond": rate,
                  "requestsPerSecond": rate, "errors": int(m.group(2)) + int(m.group(3)), "latencyMean": mean,
                  "cpuMicrosecondsPerRequest": ticks / os.sysconf("SC_CLK_TCK") * 1e6 / requests if requests else 0}))
PY
    echo "  $label, $side: $(tail -1 "$ROWS" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("{:,.0f} req/s, {:.1f} µs CPU/request, {} errors".format(r["requestsPerSecond"], r["cpuMicrosecondsPerRequest"], r["errors"]))')" >&2
}
versus() {  # versus SIDE BIN : the rows against one build
    local side=$1 bin=$2 i
    start "vs-mem-$side" "$bin/baton" dev --port 17700 --no-metrics --log-level error
    wait_port 17700
    versus_row "one node in memory, lock, 50 clients" "$side" "$bin" 17700 lock 50 1 "${PIDS[-1]}"
    stop_last
    start "vs-h2-$side" "$bin/baton" dev --port 17700 --http2-port 17710 --no-metrics --log-level error
    wait_port 17710
    h2_renew "one node in memory, renew over HTTP/2, 4 connections × 16 streams (h2load)" "$side" "${PIDS[-1]}"
    versus_row "one node in memory, renew over TCP, 4 connections × 16 in flight" "$side" "$bin" 17700 renew 4 16 "${PIDS[-1]}"
    stop_last
    rm -rf "$WORK/vs-data"
    start "vs-fsync-$side" "$bin/baton" dev --port 17701 --no-metrics --data-dir "$WORK/vs-data" --sync always --log-level error
    wait_port 17701
    versus_row "one node with fsync, lock, 50 clients" "$side" "$bin" 17701 lock 50 1 "${PIDS[-1]}"
    stop_last
    local members='[{"nodeID": "n1", "host": "127.0.0.1", "port": 17721, "raftPort": 17731},
          {"nodeID": "n2", "host": "127.0.0.1", "port": 17722, "raftPort": 17732},
          {"nodeID": "n3", "host": "127.0.0.1", "port": 17723, "raftPort": 17733}]'
    local pids=()
    for i in 1 2 3; do
        rm -rf "$WORK/vs-n$i"
        echo "{\"nodeID\": \"n$i\", \"port\": 1772$i, \"metricsPort\": 0, \"dataDirectory\": \"$WORK/vs-n$i\", \"cluster\": $members}" >"$WORK/vs-n$i.json"
        start "vs-n$i-$side" "$bin/baton" serve --config "$WORK/vs-n$i.json" --log-level error
        pids+=("${PIDS[-1]}")
    done
    wait_port 17721; wait_port 17722; wait_port 17723
    local leader
    leader=$(find_leader)
    versus_row "three nodes with fsync, lock, 64 clients (CPU of all three)" "$side" "$bin" "$leader" lock 64 1 "${pids[@]}"
    stop_last; stop_last; stop_last
}
if [ -n "${VS:-}" ]; then
    for round in $(seq 1 "${ROUNDS:-3}"); do
        echo "round $round: this build, then $VS" >&2
        versus new "$BIN"
        versus old "$VS"
    done
    python3 - "$ROWS" >"$OUT" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows.setdefault(r["row"], {}).setdefault(r["side"], []).append(r)
print("| workload | new req/s (median, runs) | old req/s (median, runs) | new / old | new µs CPU/request | old µs CPU/request |")
print("|---|---:|---:|---:|---:|---:|")
for name, sides in rows.items():
    def runs(side, key):
        return [r[key] for r in sides.get(side, [])]
    new, old = runs("new", "requestsPerSecond"), runs("old", "requestsPerSecond")
    cn, co = runs("new", "cpuMicrosecondsPerRequest"), runs("old", "cpuMicrosecondsPerRequest")
    fmt = lambda xs: f"{statistics.median(xs):,.0f} ({', '.join(f'{x:,.0f}' for x in xs)})"
    print(f"| {name} | {fmt(new)} | {fmt(old)} | {statistics.median(new) / statistics.median(old):.2f}× | "
          f"{statistics.median(cn):.1f} | {statistics.median(co):.1f} |")
PY
    cat "$OUT"
    exit 0
fi

# --- in memory -------------------------------------------------------------------------------------
echo "in memory" >&2
start baton "$BIN/baton" dev --port 17700 --http2-port 17710 --no-metrics --log-level error
BATON_PID=${PIDS[-1]}
wait_port 17700
start redis redis-server --port 16379 --bind 127.0.0.1 --save "" --appendonly no
wait_port 16379
start beanstalkd beanstalkd -l 127.0.0.1 -p 11400
wait_port 11400

bench "lock, 50 clients (Baton vs Redis SET NX PX + Lua release, no persistence)" baton baton 17700 lock 50 1
bench "lock, 50 clients (Baton vs Redis SET NX PX + Lua release, no persistence)" peer redis 16379 lock 50 1
bench "lock-contended, 50 clients on one key (Baton FIFO wait vs Redis retry loop)" baton baton 17700 lock-contended 50 1
bench "lock-contended, 50 clients on one key (Baton FIFO wait vs Redis retry loop)" peer redis 16379 lock-contended 50 1
bench "renew, 50 clients × 4 held leases (Baton vs Redis Lua PEXPIRE)" baton baton 17700 renew 50 4
bench "renew, 50 clients × 4 held leases (Baton vs Redis Lua PEXPIRE)" peer redis 16379 renew 50 4
bench "job, 16 clients, no pipelining (Baton vs beanstalkd in memory)" baton baton 17700 job 16 1
bench "job, 16 clients, no pipelining (Baton vs beanstalkd in memory)" peer beanstalkd 11400 job 16 1
bench "job, 16 clients × 8 in flight (Baton vs beanstalkd in memory)" baton baton 17700 job 16 8
bench "job, 16 clients × 8 in flight (Baton vs beanstalkd in memory)" peer beanstalkd 11400 job 16 8

# HTTP/2: one held lease renewed over and over by h2load (nghttp2's load generator, 4 connections ×
# 16 streams), against baton-bench renewing held leases over TCP with the same 64 requests in flight.
H2ROW="renew, 4 connections × 16 in flight (Baton over HTTP/2 with h2load vs Baton over TCP)"
echo "  $H2ROW" >&2
h2_renew "$H2ROW" baton "$BATON_PID"
bench "$H2ROW" peer baton 17700 renew 4 16
stop_last; stop_last; stop_last

# --- fsync on every write ------------------------------------------------------------------------
echo "durable: Baton with its write-ahead log (sync always) against the peers' fsync-always modes" >&2
FSYNC_JSON=$("$BIN/baton-bench" fsync --dir "$WORK" --json)
echo "  this disk: $FSYNC_JSON" >&2
start baton-durable "$BIN/baton" dev --port 17701 --no-metrics --data-dir "$WORK/baton-data" --sync always --log-level error
wait_port 17701
start redis-aof redis-server --port 16380 --bind 127.0.0.1 --save "" --appendonly yes --appendfsync always --dir "$WORK"
wait_port 16380
mkdir -p "$WORK/binlog"
start beanstalkd-f0 beanstalkd -l 127.0.0.1 -p 11401 -b "$WORK/binlog" -f 0
wait_port 11401
bench "lock, 50 clients, fsync on every write (Baton group commit vs Redis appendfsync always)" baton baton 17701 lock 50 1
bench "lock, 50 clients, fsync on every write (Baton group commit vs Redis appendfsync always)" peer redis 16380 lock 50 1
bench "job, 16 clients, fsync on every write (Baton group commit vs beanstalkd -f 0)" baton baton 17701 job 16 1
bench "job, 16 clients, fsync on every write (Baton group commit vs beanstalkd -f 0)" peer beanstalkd 11401 job 16 1
bench "lock, 64 clients, Baton with fsync (see the disk line below)" baton baton 17701 lock 64 1
bench "lock, 256 clients, Baton with fsync (see the disk line below)" baton baton 17701 lock 256 1
stop_last; stop_last; stop_last

# --- Baton, three nodes with fsync on every node ------------------------------------------------
echo "Baton 3-node cluster, fsync always on every node" >&2
members='[{"nodeID": "n1", "host": "127.0.0.1", "port": 17721, "raftPort": 17731},
          {"nodeID": "n2", "host": "127.0.0.1", "port": 17722, "raftPort": 17732},
          {"nodeID": "n3", "host": "127.0.0.1", "port": 17723, "raftPort": 17733}]'
for i in 1 2 3; do
    echo "{\"nodeID\": \"n$i\", \"port\": 1772$i, \"metricsPort\": 0, \"dataDirectory\": \"$WORK/cluster-n$i\", \"cluster\": $members}" >"$WORK/cluster-n$i.json"
    start "cluster-n$i" "$BIN/baton" serve --config "$WORK/cluster-n$i.json" --log-level error
done
wait_port 17721; wait_port 17722; wait_port 17723
LEADER=$(find_leader)
bench "lock, 64 clients, 3 nodes with fsync (see the etcd line below)" baton baton "$LEADER" lock 64 1
bench "lock, 1000 clients, 3 nodes with fsync (see the etcd line below)" baton baton "$LEADER" lock 1000 1
stop_last; stop_last; stop_last
echo "failover: $BIN/baton-bench failover --kills 20" >&2
FAILOVER=$("$BIN/baton-bench" failover --kills 20 --json)

# --- etcd: its own Go client, etcdctl check perf, against a 3-node cluster --------------------------
ETCD_LINE="not run"
if [ "$ETCD_PERF" != none ]; then
    echo "etcd 3-node cluster, etcdctl check perf --load=$ETCD_PERF (about a minute)" >&2
    cluster="e1=http://127.0.0.1:12380,e2=http://127.0.0.1:22380,e3=http://127.0.0.1:32380"
    for i in 1 2 3; do
        start "etcd$i" etcd --name "e$i" --data-dir "$WORK/etcd$i" \
            --listen-client-urls "http://127.0.0.1:${i}2379" --advertise-client-urls "http://127.0.0.1:${i}2379" \
            --listen-peer-urls "http://127.0.0.1:${i}2380" --initial-advertise-peer-urls "http://127.0.0.1:${i}2380" \
            --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token baton-compare
    done
    wait_port 12379; wait_port 22379; wait_port 32379
    sleep 2
    ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:12379,http://127.0.0.1:22379,http://127.0.0.1:32379 \
        check perf --load="$ETCD_PERF" >"$WORK/etcd-perf.txt" 2>&1 || true
    ETCD_LINE=$(grep -E "Throughput|Slowest|Stddev|PASS|FAIL" "$WORK/etcd-perf.txt" | tr '\n' ' ' | sed 's/  */ /g')
    stop_last; stop_last; stop_last
fi

python3 - "$ROWS" "$ETCD_LINE" "$FSYNC_JSON" "$FAILOVER" >"$OUT" <<'PY'
import json, sys
rows = {}
order = []
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["row"] not in rows:
        rows[r["row"]] = {}
        order.append(r["row"])
    rows[r["row"]][r["side"]] = r
def cell(r):
    if r is None:
        return "—", "—"
    err = f", {r['errors']} errors" if r["errors"] else ""
    if "latencyMicroseconds" not in r:  # h2load reports a mean, not percentiles
        return f"{r['cyclesPerSecond']:,.0f}{err}", f"mean {r['latencyMean']}"
    l = r["latencyMicroseconds"]
    return f"{r['cyclesPerSecond']:,.0f}{err}", f"{l['p50']/1000:.2f} / {l['p99']/1000:.2f}"
print("| workload | Baton cycles/s | Baton p50 / p99 ms | peer | peer cycles/s | peer p50 / p99 ms | Baton / peer |")
print("|---|---:|---:|---|---:|---:|---:|")
for name in order:
    b, p = rows[name].get("baton"), rows[name].get("peer")
    bc, bl = cell(b)
    pc, pl = cell(p)
    ratio = f"{b['cyclesPerSecond']/p['cyclesPerSecond']:.2f}×" if b and p and p["cyclesPerSecond"] else "—"
    print(f"| {name} | {bc} | {bl} | {p['target'] if p else '—'} | {pc} | {pl} | {ratio} |")
print()
disk = json.loads(sys.argv[3])
fsync = float(disk["fsyncsPerSecond"])
print(f"Disk: {fsync:,.0f} write+fdatasync per second from one writer (`baton-bench fsync`: the faster of "
      f"{disk['appendFsyncsPerSecond']:,} appending and {disk['preallocatedFsyncsPerSecond']:,} overwriting preallocated zeros).")
lat = disk.get("preallocatedLatencyMicroseconds")
if lat:
    print(f"One overwriting write+fdatasync took p50 {lat['p50']} µs, p99 {lat['p99']} µs, p99.9 {lat['p999']} µs, "
          f"max {lat['max'] / 1000:.1f} ms: a group commit waits for the disk's slow syncs too.")
for name in order:
    if "see the disk line" in name and "baton" in rows[name]:
        r = rows[name]["baton"]
        print(f"- {name.split(',')[1].strip()}: {r['requestsPerSecond']:,.0f} lock requests/s with fsync = {r['requestsPerSecond']/fsync:.1f}× the disk's fsyncs/s (p99 {r['latencyMicroseconds']['p99']/1000:.2f} ms)")
print()
print(f"etcd 3-node, `etcdctl check perf`: {sys.argv[2]}")
import re
m = re.search(r"Throughput too low: (\d+) writes/s|Throughput is (\d+) writes/s", sys.argv[2])
etcd = float(next(g for g in m.groups() if g)) if m else None
for name in order:
    if "3 nodes" in name and "baton" in rows[name]:
        r = rows[name]["baton"]
        ratio = f" = {r['requestsPerSecond']/etcd:.1f}× etcd's writes/s" if etcd else ""
        print(f"- {name.split(',')[1].strip()}, 3 nodes: {r['requestsPerSecond']:,.0f} lock writes/s{ratio} (p99 {r['latencyMicroseconds']['p99']/1000:.2f} ms)")
f = json.loads(sys.argv[4])
print()
print(f"Failover (`baton-bench failover --kills {f['kills']}`): median {f['medianMilliseconds']} ms, max {f['maxMilliseconds']} ms; each: {f['failoverMilliseconds']}")
PY
cat "$OUT"
