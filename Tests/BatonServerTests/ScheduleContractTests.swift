import BatonProtocol
import BatonTestSupport
import NIOCore
import Testing

/// PROTOCOL.md §8a and §9: a schedule's name is 1 to `max_key_length` bytes (issue 35, item 2), and
/// its `paused` flag is 0 or 1.
/// Before, the unique key a slot's job gets (`schedule:<name>:<slot>`) was checked against that
/// limit: a 256-byte name got INVALID_ARGUMENT 'unique key is 286 bytes, longer than the maximum of
/// 256', and with `limits.maxKeyLength` 16 no schedule could be put at all ('unique key is 33 bytes').
@Suite(.timeLimit(.minutes(1))) struct ScheduleContractTests {
    func put(_ name: String, on raw: RawConnection, sequence: UInt64) async throws -> Reply {
        let spec = ScheduleSpec(name: name, every: Milliseconds(60_000), job: JobSpec(type: "report"))
        try await raw.send(.command(SequenceNumber(sequence), .putSchedule(spec)), id: UInt32(10 + sequence))
        return try await raw.nextReply().reply
    }

    @Test func aNameOfTheLongestAllowedLengthIsTaken() async throws {
        try await withNode { node in
            let raw = try await RawConnection(port: node.port)
            try await raw.hello(client: 361)
            let longest = String(repeating: "s", count: 256)
            #expect(try await put(longest, on: raw, sequence: 1) == .schedulePut(created: true))
            // It fires, and its job carries the key the node derived, longer than the limit on client keys.
            try await raw.send(.command(SequenceNumber(2), .triggerSchedule(name: longest)), id: 20)
            guard case .scheduleTriggered(let id) = try await raw.nextReply().reply else {
                Issue.record("SCHEDULE_TRIGGER of the 256-byte name was refused")
                return
            }
            try await raw.send(.query(.getJob(id)), id: 21)
            guard case .job(let job) = try await raw.nextReply().reply else {
                Issue.record("JOB_GET of the triggered job failed")
                return
            }
            #expect(job.uniqueKey.hasPrefix("schedule:\(longest):trigger:"))
            // One byte more is refused, naming the name.
            let tooLong = try await put(longest + "s", on: raw, sequence: 3)
            guard case .error(let e) = tooLong else {
                Issue.record("a 257-byte name was taken")
                return
            }
            #expect(e.code == .invalidArgument && e.message.contains("schedule name is 257 bytes"), "\(e)")
            await raw.close()
        }
    }

    @Test func aShortKeyLimitStillAllowsSchedules() async throws {
        try await withNode({ $0.limits.maxKeyLength = 16 }) { node in
            let raw = try await RawConnection(port: node.port)
            try await raw.hello(client: 362)
            #expect(try await put(String(repeating: "n", count: 16), on: raw, sequence: 1) == .schedulePut(created: true))
            await raw.close()
        }
    }

    /// `paused` is 0 or 1; before, any other value was taken as 1 (issue 35).
    @Test func pausedIsZeroOrOne() async throws {
        try await withNode { node in
            let raw = try await RawConnection(port: node.port)
            try await raw.hello(client: 363)
            var bytes = ByteBuffer()
            bytes.writeRequest(
                .command(SequenceNumber(1), .putSchedule(ScheduleSpec(name: "p", every: Milliseconds(60_000), job: JobSpec(type: "t")))),
                requestID: RequestID(5))
            // Frame header 10, sequence 8, name 3, every_ms 4, cron 2, jitter_ms 4, overlap 1, catch_up_ms 4.
            let at = 10 + 8 + 3 + 4 + 2 + 4 + 1 + 4
            #expect(bytes.getInteger(at: at, as: UInt8.self) == 0)
            bytes.setInteger(UInt8(2), at: at)
            try await raw.send(bytes)
            let reply = try await raw.nextReply().reply
            guard case .error(let e) = reply else {
                Issue.record("paused 2 was taken: \(reply)")
                return
            }
            #expect(e.code == .invalidArgument && e.message == "paused is 2; it must be 0 or 1", "\(e)")
            // The connection goes on.
            #expect(try await put("p", on: raw, sequence: 2) == .schedulePut(created: true))
            await raw.close()
        }
    }
}
