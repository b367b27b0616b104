import BatonProtocol

// Schedules: recurring jobs the cluster fires, once per slot (PROTOCOL.md, "Schedules").
extension BatonClient {
    /// Creates the schedule, or replaces the one of the same name; putting the same spec again
    /// changes nothing (safe to call at every start of every replica). Returns whether it is new.
    @discardableResult
    public func putSchedule(_ spec: ScheduleSpec) async throws -> Bool {
        guard case .schedulePut(let created) = try await command(.putSchedule(spec)) else { throw unexpected("SCHEDULE_PUT") }
        return created
    }

    /// The schedule `name`, with its next slot and its counts; nil when there is none.
    public func getSchedule(_ name: String) async throws -> ScheduleInfo? {
        guard case .schedule(let info) = try await call(.query(.getSchedule(name: name))) else {
            throw unexpected("SCHEDULE_GET")
        }
        return info
    }

    /// Schedules by name, after `after`, at most `limit` (zero: the node's most).
    public func listSchedules(after: String = "", limit: UInt16 = 0) async throws -> [ScheduleInfo] {
        guard case .schedules(let infos) = try await call(.query(.listSchedules(after: after, limit: limit))) else {
            throw unexpected("SCHEDULE_LIST")
        }
        return infos
    }

    /// Deletes the schedule; the jobs it added stay. Throws `.server(INVALID_ARGUMENT)` when there is none.
    public func deleteSchedule(_ name: String) async throws {
        guard case .scheduleUpdated = try await command(.deleteSchedule(name: name)) else { throw unexpected("SCHEDULE_DELETE") }
    }

    /// Stops firing until `resumeSchedule`; the slots in between are neither fired nor missed.
    public func pauseSchedule(_ name: String) async throws {
        guard case .scheduleUpdated = try await command(.pauseSchedule(name: name)) else { throw unexpected("SCHEDULE_PAUSE") }
    }

    /// Fires again from the first slot after now.
    public func resumeSchedule(_ name: String) async throws {
        guard case .scheduleUpdated = try await command(.resumeSchedule(name: name)) else { throw unexpected("SCHEDULE_RESUME") }
    }

    /// Adds the schedule's job now, outside its slots and whatever its overlap policy; returns the job.
    @discardableResult
    public func triggerSchedule(_ name: String) async throws -> JobID {
        guard case .scheduleTriggered(let id) = try await command(.triggerSchedule(name: name)) else {
            throw unexpected("SCHEDULE_TRIGGER")
        }
        return id
    }
}
