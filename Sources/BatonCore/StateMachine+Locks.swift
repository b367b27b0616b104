import BatonProtocol

extension StateMachine {
    mutating func acquireLock(
        key: String, owner: String, ttl: Milliseconds, wait: Milliseconds, client: ClientID, sequence: SequenceNumber,
        digest: CommandDigest
    ) -> Reply? {
        let existing = locks[key]
        if existing == nil && locks.count >= configuration.maxLocks {
            return .error(.quotaExceeded, "\(locks.count) locks are held or waited for, the most allowed (limits.maxLocks)")
        }
        if existing == nil { lockOrder.insert(key) }
        var record = existing ?? LockRecord()
        guard let holder = record.holder else {
            let grant = grantLock(&record, key: key, owner: owner, client: client, ttl: ttl)
            locks[key] = record
            return .lockAcquired(grant)
        }
        if wait == .zero || sequence.rawValue == 0 {
            return .lockAcquired(.busy(holder: holder.owner, expiresAt: holder.expiresAt))
        }
        let deadline = now.adding(wait)
        record.waiters.append(
            LockWaitEntry(owner: owner, clientID: client, sequence: sequence, ttl: ttl, deadline: deadline, digest: digest))
        locks[key] = record
        waits[WaitKey(clientID: client, sequence: sequence)] = .lock(key)
        schedule(.lockWait(key: key, clientID: client, sequence: sequence), at: deadline)
        return nil
    }

    mutating func grantLock(
        _ record: inout LockRecord, key: String, owner: String, client: ClientID, ttl: Milliseconds
    ) -> LockAcquisition {
        let token = nextToken()
        let expiresAt = now.adding(ttl)
        record.holder = LockHolder(owner: owner, clientID: client, token: token, grantedAt: now, expiresAt: expiresAt)
        schedule(.lockLease(key: key, token: token), at: expiresAt)
        return .granted(token: token, expiresAt: expiresAt, leaseLeft: ttl)
    }

    mutating func renewLock(key: String, token: FencingToken, ttl: Milliseconds) -> Reply {
        guard var holder = locks[key]?.holder, holder.token == token else {
            return .error(.staleToken, "token \(token) does not hold lock '\(key)'")
        }
        let expiresAt = now.adding(ttl)
        // A renew never shortens a lease the holder was already promised.
        if expiresAt > holder.expiresAt {
            holder.expiresAt = expiresAt
            locks[key]!.holder = holder
            schedule(.lockLease(key: key, token: token), at: expiresAt)
        }
        return .lockRenewed(expiresAt: holder.expiresAt, leaseLeft: .left(until: holder.expiresAt, at: now))
    }

    mutating func releaseLock(key: String, token: FencingToken) -> Reply {
        guard let holder = locks[key]?.holder, holder.token == token else {
            return .error(.staleToken, "token \(token) does not hold lock '\(key)'")
        }
        passLock(key)
        return .lockReleased
    }

    /// Ends the current holder's lease and grants the lock to the first waiter, if any.
    mutating func passLock(_ key: String) {
        guard var record = locks[key] else { return }
        record.holder = nil
        if record.waiters.isEmpty {
            removeLock(key)
            return
        }
        let next = record.waiters.removeFirst()
        let grant = grantLock(&record, key: key, owner: next.owner, client: next.clientID, ttl: next.ttl)
        locks[key] = record
        complete(next.clientID, next.sequence, digest: next.digest, .lockAcquired(grant))
    }

    /// Removes the record of a lock nobody holds or waits for.
    mutating func removeLock(_ key: String) {
        locks[key] = nil
        if lockOrder.remove() { lockOrder.compact { [locks] in locks[$0] != nil } }
    }

    mutating func expireLock(key: String, token: FencingToken) {
        guard let holder = locks[key]?.holder, holder.token == token, holder.expiresAt <= now else { return }
        passLock(key)
    }

    mutating func expireLockWait(key: String, client: ClientID, sequence: SequenceNumber) {
        guard var record = locks[key],
            let index = record.waiters.firstIndex(where: { $0.clientID == client && $0.sequence == sequence })
        else { return }
        let waiter = record.waiters.remove(at: index)
        locks[key] = record
        let holder = record.holder
        complete(client, sequence, digest: waiter.digest, .lockAcquired(.busy(holder: holder?.owner ?? "", expiresAt: holder?.expiresAt ?? .zero)))
    }

    func lockInfo(_ key: String, at time: Timestamp) -> LockInfo? {
        guard let record = locks[key], let h = record.holder, h.expiresAt > time else { return nil }
        return LockInfo(
            key: key, owner: h.owner, clientID: h.clientID, token: h.token, grantedAt: h.grantedAt,
            expiresAt: h.expiresAt,
            waiters: record.waiters.map { LockWaiter(owner: $0.owner, clientID: $0.clientID, deadline: $0.deadline) })
    }

    func listLocks(prefix: String, after: String, limit: Int, at time: Timestamp) -> [LockInfo] {
        // In key order from where the page starts. Keys with the prefix sort from the prefix on and
        // before the prefix followed by the last code point (String's order is by code points).
        var page: [LockInfo] = []
        let fromAfter = !after.isEmpty && after >= prefix
        let end = prefix.isEmpty ? nil : prefix + "\u{10FFFF}"
        lockOrder.forEach(from: fromAfter ? after : prefix, inclusive: !fromAfter) { key in
            if let end, key > end { return false }
            if key.hasPrefix(prefix), let info = lockInfo(key, at: time) { page.append(info) }
            return page.count < limit
        }
        return page
    }
}
