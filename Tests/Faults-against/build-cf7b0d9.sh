#!/usr/bin/env bash
# Builds the server of cf7b0d9 (before the lease fixes of the failover issue) on today's wire, so
# the fault suite can run against it:
#
#   Tests/Faults-against/build-cf7b0d9.sh /tmp/baton-cf7b0d9
#   BATON_FAULT_BATON=/tmp/baton-cf7b0d9/.build/debug/baton BATON_FAULT_SEED=1 \
#     swift test --filter aSeededScheduleOfFaultsBreaksNoPromise
#
# Only what the suite needs to talk to it and run it unprivileged is changed; the server's logic
# (its clock, its ticks, the driver, Raft) stays as it was at cf7b0d9:
# - the wire (Sources/BatonProtocol) and the answers' `lease_left` (Sources/BatonCore, four lines)
#   and the client library (it shares the protocol module) come from this checkout; the node
#   recounts `lease_left` when it sends (one line in NodeRuntime);
# - `ProtocolError` is called `ErrorReply`, as in this checkout;
# - `.socketOption(.tcp_nodelay)` becomes `.tcpOption(.tcp_nodelay)`: the old option set SO_DEBUG,
#   which needs root, and the suite runs members as an unprivileged user.
set -euo pipefail
dest=${1:?usage: $0 DIRECTORY}
here=$(cd "$(dirname "$0")/../.." && pwd)
old=cf7b0d9
rm -rf "$dest"
git -C "$here" worktree remove --force "$dest" 2>/dev/null || true
git -C "$here" worktree prune
git -C "$here" worktree add --detach "$dest" "$old" >/dev/null
rm -rf "$dest"/Sources/BatonProtocol "$dest"/Sources/BatonCore "$dest"/Sources/BatonClient
git -C "$here" archive HEAD Sources/BatonProtocol Sources/BatonCore Sources/BatonClient | tar -x -C "$dest"
sed -i 's/\.socketOption(\.tcp_nodelay)/.tcpOption(.tcp_nodelay)/' "$dest"/Sources/BatonServer/*.swift
# Names the old server uses that this checkout's modules have since changed.
grep -rlw ProtocolError "$dest"/Sources | xargs -r sed -i 's/\bProtocolError\b/ErrorReply/g'
sed -i 's/route\.connection\.deliver(reply, requestID/route.connection.deliver(reply.sent(at: now), requestID/' \
  "$dest"/Sources/BatonServer/NodeRuntime.swift
grep -q 'deliver(reply.sent(at: now)' "$dest"/Sources/BatonServer/NodeRuntime.swift
! grep -q 'socketOption(.tcp_nodelay)' "$dest"/Sources/BatonServer/*.swift
grep -q 'tickProposed' "$dest"/Sources/BatonServer/NodeRuntime.swift  # still the old server
cd "$dest"
swift build --product baton
echo "built $dest/.build/debug/baton"
