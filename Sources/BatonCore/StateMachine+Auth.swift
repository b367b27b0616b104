import BatonProtocol

extension StateMachine {
    /// What `command` needs of its principal's roles. A command on a job by id needs the permission on
    /// that job's type; when no such job exists there is nothing to check, and the command's own
    /// answer (JOB_NOT_FOUND, CLAIM_LOST) follows.
    func needs(_ command: Command) -> [AuthStore.Need] {
        func onJob(_ id: JobID, _ actions: Permission.Actions) -> [AuthStore.Need] {
            guard let job = jobs[id] else { return [] }
            return [.name(.job, actions, job.spec.type)]
        }
        switch command {
        case .acquireLock(let key, _, _, _), .renewLock(let key, _, _), .releaseLock(let key, _):
            return [.name(.lock, .write, key)]
        case .addJob(let spec):
            return [.name(.job, .write, spec.type)]
        case .claimJob(let types, _, _), .claimJobs(let types, _, _):
            return types.map { .name(.job, .work, $0) }
        case .completeJobs(_, let claimMax, let types, _):
            // Each completion is checked on its own as it is applied (StateMachine.completeJobs).
            return claimMax == 0 ? [] : types.map { .name(.job, .work, $0) }
        case .addJobs(let specs):
            var seen = Set<String>()
            return specs.compactMap { seen.insert($0.type).inserted ? .name(.job, .write, $0.type) : nil }
        case .claimJobByID(let id, _), .extendJob(let id, _, _), .completeJob(let id, _, _), .failJob(let id, _, _),
            .abortJob(let id, _):
            return onJob(id, .work)
        case .deleteJob(let id), .requeueJob(let id):
            return onJob(id, .admin)
        case .purgeJobs:
            return [.prefix(.job, .admin, "")]
        case .forceReleaseLock, .addUser, .deleteUser, .grantRole, .revokeRole, .addToken, .removeToken, .addRole,
            .deleteRole, .grantPermission, .revokePermission:
            return [.clusterAdmin]
        case .putSchedule(let spec):
            // A schedule adds jobs of its type as it likes: it takes job:admin on that type (and on
            // the type it replaces).
            let old = schedules[spec.name].map { [AuthStore.Need.name(.job, .admin, $0.spec.job.type)] } ?? []
            return old + [.name(.job, .admin, spec.job.type)]
        case .deleteSchedule(let name), .pauseSchedule(let name), .resumeSchedule(let name), .triggerSchedule(let name):
            return onSchedule(name, .admin)
        }
    }

    /// What `query` needs of its principal's roles.
    func needs(_ query: Query) -> [AuthStore.Need] {
        switch query {
        case .getLock(let key):
            return [.name(.lock, .read, key)]
        case .listLocks(let prefix, _, _):
            return [.prefix(.lock, .read, prefix)]
        case .getJob(let id):
            guard let job = jobs[id] else { return [] }
            return [.name(.job, .read, job.spec.type)]
        case .listJobs(let filter):
            return [filter.type.isEmpty ? .prefix(.job, .read, "") : .name(.job, .read, filter.type)]
        case .jobRunning(let type):
            return [.name(.job, .read, type)]
        case .nodeStatus, .listLeases, .listAuth:
            return [.clusterAdmin]  // NODE_STATUS: the cluster's details (PING tells a node is up)
        case .getSchedule(let name):
            return onSchedule(name, .read)
        case .listSchedules:
            return [.prefix(.job, .read, "")]
        }
    }

    /// What a refused command on one job or schedule, by id or name, answers. PERMISSION_DENIED
    /// names the job's type, which tells a user that may not even read the job that it exists and
    /// what it is (issue 33): such a user gets the answer of a missing job or schedule instead. A
    /// user that may read it (and so knows it exists) is told which permission it lacks.
    func unseen(_ command: Command, refused refusal: ErrorReply, by principal: Principal?) -> Reply {
        guard refusal.code == .permissionDenied else { return .error(refusal) }
        switch command {
        case .claimJobByID(let id, _), .extendJob(let id, _, _), .completeJob(let id, _, _), .failJob(let id, _, _),
            .abortJob(let id, _), .deleteJob(let id), .requeueJob(let id):
            return auth.refusal(principal, needs(Query.getJob(id))) == nil ? .error(refusal) : noJob(id)
        case .deleteSchedule(let name), .pauseSchedule(let name), .resumeSchedule(let name), .triggerSchedule(let name):
            return auth.refusal(principal, onSchedule(name, .read)) == nil ? .error(refusal) : noSchedule(name)
        default:
            return .error(refusal)
        }
    }

    /// `unseen` for queries: a job by id answers as a missing one, a schedule by name `found 0`.
    func unseen(_ query: Query, refused refusal: ErrorReply) -> Reply {
        guard refusal.code == .permissionDenied else { return .error(refusal) }
        switch query {
        case .getJob(let id): return noJob(id)
        case .getSchedule: return .schedule(nil)
        default: return .error(refusal)
        }
    }

    /// A command or query on a schedule by name needs the permission on its job's type; when no
    /// such schedule exists there is nothing to check, and the answer says so.
    func onSchedule(_ name: String, _ actions: Permission.Actions) -> [AuthStore.Need] {
        guard let record = schedules[name] else { return [] }
        return [.name(.job, actions, record.spec.job.type)]
    }

    /// Why `principal` may not run `query`, or nil when it may: for the node, which answers NODE_STATUS
    /// itself and reads through the state machine.
    public func refusal(_ query: Query, by principal: Principal?) -> ErrorReply? {
        auth.enabled ? auth.refusal(principal, needs(query)) : nil
    }

    /// Installs the bootstrap token: the user `root` (created when missing) gets the built-in role and
    /// this token, the previous bootstrap token is taken away, and authentication is on from here.
    mutating func bootstrapAuth(_ hash: TokenHash) {
        if auth.isBootstrapped(with: hash) { return }
        let root = AuthStore.rootUser
        var user = auth.users[root] ?? AuthStore.User()
        if !user.roles.contains(AuthStore.rootRole) { user.roles = (user.roles + [AuthStore.rootRole]).sorted() }
        if let old = auth.bootstrap { user.tokens[old.id] = nil }
        if let holder = auth.owners[hash.id], holder != root { auth.users[holder]?.tokens[hash.id] = nil }
        user.tokens[hash.id] = hash
        auth.users[root] = user
        auth.bootstrap = hash
        auth.enabled = true
        auth.rebuildOwners()
    }

    /// Applies a user or role change; nil when `command` is not one.
    mutating func executeAuthChange(_ command: Command) -> Reply? {
        let done = Reply.authUpdated(command.opcode)
        func noUser(_ name: String) -> Reply { .error(.invalidArgument, "no user '\(name)'") }
        func noRole(_ name: String) -> Reply { .error(.invalidArgument, "no role '\(name)'") }
        let builtIn = Reply.error(.invalidArgument, "role '\(AuthStore.rootRole)' is built in: it grants everything and cannot be changed")
        // Issue 33: root could lock everyone out of the cluster for good (a restart did not undo it).
        func lockout(_ what: String) -> Reply {
            .error(
                .invalidArgument,
                "\(what), or nobody could administer the cluster; to replace the admin token, write a new one into every member's auth.adminTokenFile and restart them")
        }
        switch command {
        case .addUser(let name):
            if let e = checkName(name, "user") { return .error(e) }
            guard auth.users[name] == nil else { return .error(.invalidArgument, "user '\(name)' exists") }
            auth.users[name] = AuthStore.User()
            return done
        case .deleteUser(let name):
            if name == AuthStore.rootUser { return lockout("user '\(name)' cannot be deleted: it holds the admin token") }
            guard let user = auth.users.removeValue(forKey: name) else { return noUser(name) }
            for id in user.tokens.keys { auth.owners[id] = nil }
            return done
        case .grantRole(let name, let role):
            guard auth.users[name] != nil else { return noUser(name) }
            guard role == AuthStore.rootRole || auth.roles[role] != nil else { return noRole(role) }
            if !auth.users[name]!.roles.contains(role) { auth.users[name]!.roles = (auth.users[name]!.roles + [role]).sorted() }
            return done
        case .revokeRole(let name, let role):
            if name == AuthStore.rootUser && role == AuthStore.rootRole {
                return lockout("role '\(role)' cannot be taken from user '\(name)'")
            }
            guard auth.users[name] != nil else { return noUser(name) }
            guard auth.users[name]!.roles.contains(role) else { return .error(.invalidArgument, "user '\(name)' has no role '\(role)'") }
            auth.users[name]!.roles.removeAll { $0 == role }
            return done
        case .addToken(let name, let hash):
            guard let user = auth.users[name] else { return noUser(name) }
            guard auth.owners[hash.id] == nil, hash.id != .certificate else {
                return .error(.invalidArgument, "a token with id \(hash.id) exists; make another")
            }
            guard user.tokens.count < AuthStore.maxTokensPerUser else {
                return .error(.invalidArgument, "user '\(name)' holds \(AuthStore.maxTokensPerUser) tokens, the most allowed; remove one first")
            }
            auth.users[name]!.tokens[hash.id] = hash
            auth.owners[hash.id] = name
            return .tokenAdded(hash.id)
        case .removeToken(let name, let id):
            if name == AuthStore.rootUser, id == auth.bootstrap?.id || auth.users[name]?.tokens.keys.elementsEqual([id]) == true {
                return lockout("token \(id) of user '\(name)' cannot be removed: it is the admin token or root's only one")
            }
            guard auth.users[name] != nil else { return noUser(name) }
            guard auth.users[name]!.tokens.removeValue(forKey: id) != nil else {
                return .error(.invalidArgument, "user '\(name)' has no token \(id)")
            }
            auth.owners[id] = nil
            return done
        case .addRole(let name):
            if let e = checkName(name, "role") { return .error(e) }
            guard name != AuthStore.rootRole, auth.roles[name] == nil else { return .error(.invalidArgument, "role '\(name)' exists") }
            auth.roles[name] = []
            return done
        case .deleteRole(let name):
            guard name != AuthStore.rootRole else { return builtIn }
            guard auth.roles.removeValue(forKey: name) != nil else { return noRole(name) }
            for user in auth.users.keys { auth.users[user]!.roles.removeAll { $0 == name } }
            return done
        case .grantPermission(let role, let permission):
            guard role != AuthStore.rootRole else { return builtIn }
            guard var permissions = auth.roles[role] else { return noRole(role) }
            if permission.resource != .cluster, let e = checkName(permission.pattern, "pattern") { return .error(e) }
            if let i = permissions.firstIndex(where: { $0.resource == permission.resource && $0.pattern == permission.pattern }) {
                permissions[i].actions.formUnion(permission.actions)
            } else {
                guard permissions.count < AuthStore.maxPermissionsPerRole else {
                    return .error(.invalidArgument, "role '\(role)' has \(AuthStore.maxPermissionsPerRole) permissions, the most allowed")
                }
                permissions.append(permission)
            }
            auth.roles[role] = permissions
            return done
        case .revokePermission(let role, let permission):
            guard role != AuthStore.rootRole else { return builtIn }
            guard var permissions = auth.roles[role] else { return noRole(role) }
            guard let i = permissions.firstIndex(where: { $0.resource == permission.resource && $0.pattern == permission.pattern }),
                !permissions[i].actions.isDisjoint(with: permission.actions)
            else { return .error(.invalidArgument, "role '\(role)' has no permission \(permission)") }
            permissions[i].actions.subtract(permission.actions)
            if permissions[i].actions.isEmpty { permissions.remove(at: i) }
            auth.roles[role] = permissions
            return done
        default:
            return nil
        }
    }
}

extension StateMachine {
    /// Answers every waiting acquire and claim whose client's user may no longer make it (its token
    /// or user removed, a role or permission taken away) with the refusal, and takes it out of its
    /// line, in the entry that revoked it (issue 33: a wait outlived its revocation and was granted
    /// seconds later). In (client, sequence) order, so every member answers alike.
    mutating func refuseRevokedWaits() {
        guard !waits.isEmpty else { return }
        let keys = waits.keys.sorted { ($0.clientID.rawValue, $0.sequence.rawValue) < ($1.clientID.rawValue, $1.sequence.rawValue) }
        for key in keys {
            guard let place = waits[key], let principal = sessions[key.clientID]?.principal else { continue }
            let needs: [AuthStore.Need]
            switch place {
            case .lock(let lockKey):
                needs = [.name(.lock, .write, lockKey)]
            case .claim:
                let types = claimWaiters.first { $0.clientID == key.clientID && $0.sequence == key.sequence }?.types ?? []
                needs = types.map { .name(.job, .work, $0) }
            }
            guard let refusal = auth.refusal(principal, needs) else { continue }
            let digest = waitingDigest(key, at: place) ?? .unknown
            stopWaiting(key, at: place)
            complete(key.clientID, key.sequence, digest: digest, .error(refusal))
        }
    }
}

extension Command {
    /// An auth change that may take a permission away from someone.
    var mayRevoke: Bool {
        switch self {
        case .deleteUser, .revokeRole, .removeToken, .deleteRole, .revokePermission: true
        default: false
        }
    }
}
