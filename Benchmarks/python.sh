#!/usr/bin/env bash
# The Python lock cycle, Baton's client against redis-py (issue 23's benchmark): one node in memory
# and Redis without persistence on 127.0.0.1, ROUNDS alternating rounds of DURATION seconds each.
# Installs redis-server (Debian) and, in a virtual environment, redis-py and ./Clients/python.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
command -v redis-server >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }
venv=$(mktemp -d)
python3 -m venv "$venv"
# From a copy: building in place would leave build/ and *.egg-info in the source tree.
cp -r Clients/python "$venv/src"
"$venv/bin/pip" install -q redis "$venv/src"
swift build -c release --product baton >/dev/null
.build/release/baton dev --port 17720 --no-metrics --log-level error &
baton_pid=$!
redis-server --port 17721 --save '' --appendonly no --daemonize no --loglevel warning &
redis_pid=$!
trap 'kill $baton_pid $redis_pid 2>/dev/null; wait 2>/dev/null; rm -rf "$venv"' EXIT
sleep 1
for round in $(seq "$ROUNDS"); do
    "$venv/bin/python" Benchmarks/python_lock.py baton 127.0.0.1:17720 --seconds "$DURATION"
    "$venv/bin/python" Benchmarks/python_lock.py redis 127.0.0.1:17721 --seconds "$DURATION"
done
