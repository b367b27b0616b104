import BatonClient
import BatonProtocol
import BatonRaft
import BatonTestSupport
import NIOConcurrencyHelpers

/// The clients of the fault suite: each loops until told to stop, every operation recorded.
enum Workload {
    /// Takes one of three locks (TTL 1-3 s, now or with a wait), holds it a while, maybe renews,
    /// releases.
    static func locks(
        _ client: BatonClient, process: Int, recorder: Recorder, resource: FencedResource, seed: UInt64, stop: NIOLockedValueBox<Bool>
    ) async {
        var dice = SplitMix64(seed: seed)  // one per client, so a seed replays the same choices
        while !stop.withLockedValue({ $0 }) {
            let key = ["a", "b", "c"][dice.roll(3)]
            let ttl = Duration.milliseconds(1_000 + dice.roll(2_001))
            let wait = dice.roll(2) == 0 ? Duration.zero : .seconds(2)
            guard case .granted(let token, _, _) = await recorder.acquire(client, process: process, key: key, ttl: ttl, wait: wait) else {
                try? await Task.sleep(for: .milliseconds(50 + dice.roll(200)))
                continue
            }
            await recorder.write(resource, process: process, key: key, token: token, paused: false)
            try? await Task.sleep(for: .milliseconds(dice.roll(400)))
            if dice.roll(2) == 0 {
                await recorder.renew(client, process: process, key: key, token: token, ttl: ttl)
                try? await Task.sleep(for: .milliseconds(dice.roll(300)))
            }
            await recorder.write(resource, process: process, key: key, token: token, paused: false)
            await recorder.release(client, process: process, key: key, token: token)
        }
    }

    /// Takes the lock `fenced` (TTL 1 s, waiting up to 3 s) and writes to the resource under its
    /// token; every other time it stops past its lease first (a paused client), so another holder
    /// may have written since, and its late write must be refused.
    static func pausedHolder(
        _ client: BatonClient, process: Int, recorder: Recorder, resource: FencedResource, seed: UInt64, stop: NIOLockedValueBox<Bool>
    ) async {
        var dice = SplitMix64(seed: seed)  // one per client, so a seed replays the same choices
        while !stop.withLockedValue({ $0 }) {
            guard case .granted(let token, _, _) = await recorder.acquire(client, process: process, key: "fenced", ttl: .seconds(1), wait: .seconds(3))
            else {
                try? await Task.sleep(for: .milliseconds(50 + dice.roll(200)))
                continue
            }
            await recorder.write(resource, process: process, key: "fenced", token: token, paused: false)
            let paused = dice.roll(2) == 0
            try? await Task.sleep(for: .milliseconds(paused ? 1_500 + dice.roll(1_000) : dice.roll(300)))
            await recorder.write(resource, process: process, key: "fenced", token: token, paused: paused)
            await recorder.release(client, process: process, key: "fenced", token: token)
        }
    }

    /// The locks' keys, as readers ask for them.
    static let keys = ["a", "b", "c", "fenced"]

    /// Reads the locks, one at a time, from the one member `client` is connected to; it is never
    /// redirected, so a paused leader finds its reads waiting when it resumes.
    static func reads(_ client: BatonClient, process: Int, recorder: Recorder, seed: UInt64, stop: NIOLockedValueBox<Bool>) async {
        var dice = SplitMix64(seed: seed)  // one per client, so a seed replays the same choices
        while !stop.withLockedValue({ $0 }) {
            await recorder.read(client, process: process, key: keys[dice.roll(keys.count)])
            try? await Task.sleep(for: .milliseconds(10 + dice.roll(50)))
        }
    }

    /// Adds jobs (some with a unique key), claims them (waiting up to 1 s), and completes most;
    /// the rest are left for their lease to run out, so they are retried.
    static func jobs(_ client: BatonClient, process: Int, recorder: Recorder, seed: UInt64, stop: NIOLockedValueBox<Bool>) async {
        var dice = SplitMix64(seed: seed)  // one per client, so a seed replays the same choices
        var n = 0
        while !stop.withLockedValue({ $0 }) {
            n += 1
            let unique = dice.roll(4) == 0 ? "u\(process)-\(n / 2)" : ""
            await recorder.addJob(client, process: process, type: "t", uniqueKey: unique)
            guard let job = await recorder.claim(client, process: process, type: "t", wait: .seconds(1)) else { continue }
            try? await Task.sleep(for: .milliseconds(dice.roll(300)))
            if dice.roll(5) != 0 { await recorder.complete(client, process: process, job: job.id, token: job.token) }
        }
    }
}
