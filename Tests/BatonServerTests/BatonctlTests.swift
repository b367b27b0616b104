import BatonClient
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing


@Suite(.timeLimit(.minutes(2))) struct BatonctlTests {
    @Test func everyCommandInTableAndJSON() async throws {
        try await withNode { node in
            let port = node.port
            let c = node.client("image-worker")
            guard case .granted(let token, _, _) = try await c.acquireLock("reports/daily", ttl: .seconds(30)) else { Issue.record("the premise failed: the lock was not granted"); return }
            let waiter = node.client("waiter")
            let waiting = Task { try await waiter.acquireLock("reports/daily", ttl: .seconds(5), wait: .seconds(20), owner: "waiter-1") }
            try await c.waitForWaiters(1, on: "reports/daily")
            _ = try await c.addJob(JobSpec(type: "thumb", payload: Array("cat.png".utf8)))
            let running = try #require(try await c.claimJob(types: ["thumb"]))
            let (deadID, _) = try await c.addJob(JobSpec(type: "scan", maxAttempts: 1))
            let d = try await c.claimJob(id: deadID)
            try await c.failJob(deadID, token: d.token, error: "decoder crashed")

            // status
            var r = try await batonctl(["status"], port: port)
            #expect(r.status == 0 && r.out.contains("standalone") && r.out.contains("locks held 1"), "\(r)")
            r = try await batonctl(["status", "--output", "json"], port: port)
            let status = try #require(try json(r.out) as? [String: Any])
            let nodes = try #require(status["nodes"] as? [[String: Any]])
            #expect(nodes.first?["leader"] as? Bool == true && nodes.first?["address"] as? String == "127.0.0.1:\(port)")
            #expect((status["totals"] as? [String: Any])?["jobsDead"] as? Int == 1)

            // locks list / get
            r = try await batonctl(["locks", "list", "--prefix", "reports/"], port: port)
            #expect(r.status == 0 && r.out.contains("reports/daily") && r.out.contains("image-worker"))
            r = try await batonctl(["--output", "json", "locks", "list"], port: port)
            let locks = try #require(try json(r.out) as? [[String: Any]])
            #expect(locks.count == 1 && locks[0]["token"] as? UInt64 == token.rawValue)
            r = try await batonctl(["locks", "get", "reports/daily"], port: port)
            #expect(r.status == 0 && r.out.contains("holder      image-worker") && r.out.contains("1. waiter-1"), "\(r.out)")
            r = try await batonctl(["locks", "get", "reports/daily", "--output", "json"], port: port)
            let lock = try #require(try json(r.out) as? [String: Any])
            #expect((lock["waiters"] as? [[String: Any]])?.first?["owner"] as? String == "waiter-1")
            #expect((lock["expiresInMs"] as? Int).map { $0 > 0 && $0 <= 30_000 } == true)

            // leases list
            r = try await batonctl(["leases", "list"], port: port)
            #expect(r.status == 0 && r.out.contains("lock") && r.out.contains("job \(running.id.rawValue) (thumb)"), "\(r.out)")
            r = try await batonctl(["leases", "list", "--output", "json"], port: port)
            let leases = try #require(try json(r.out) as? [[String: Any]])
            #expect(leases.count == 2)
            let remaining = leases.compactMap { $0["expiresInMs"] as? Int }
            #expect(remaining == remaining.sorted())

            // jobs list / get
            r = try await batonctl(["jobs", "list", "--state", "dead"], port: port)
            #expect(r.status == 0 && r.out.contains("scan") && r.out.contains("decoder crashed") && !r.out.contains("thumb"))
            r = try await batonctl(["jobs", "list", "--type", "thumb", "--output", "json"], port: port)
            let jobs = try #require(try json(r.out) as? [[String: Any]])
            #expect(jobs.count == 1 && jobs[0]["state"] as? String == "running" && jobs[0]["payload"] as? String == "cat.png")
            r = try await batonctl(["jobs", "get", "\(deadID.rawValue)"], port: port)
            #expect(r.status == 0 && r.out.contains("state        dead"))
            r = try await batonctl(["jobs", "get", "\(deadID.rawValue)", "--output", "json"], port: port)
            #expect((try json(r.out) as? [String: Any])?["lastError"] as? String == "decoder crashed")

            // jobs add / retry / delete / purge
            r = try await batonctl(["jobs", "add", "--type", "thumb", "--payload", "dog.png", "--unique-key", "dog", "--output", "json"], port: port)
            let added = try #require(try json(r.out) as? [String: Any])
            #expect(added["created"] as? Bool == true)
            let addedID = try #require(added["id"] as? UInt64)
            r = try await batonctl(["jobs", "add", "--type", "thumb", "--unique-key", "dog"], port: port)
            #expect(r.status == 0 && r.out.contains("already unfinished"))
            r = try await batonctl(["jobs", "retry", "\(deadID.rawValue)"], port: port)
            #expect(r.status == 0 && r.out.contains("queued again"))
            #expect(try await c.getJob(deadID).state == .queued)
            r = try await batonctl(["jobs", "delete", "\(addedID)", "--output", "json"], port: port)
            #expect((try json(r.out) as? [String: Any])?["id"] as? UInt64 == addedID)
            try await c.completeJob(running.id, token: running.token)
            r = try await batonctl(["jobs", "purge", "--state", "completed", "--older-than", "0s", "--output", "json"], port: port)
            #expect((try json(r.out) as? [String: Any])?["purged"] as? Int == 1)
            r = try await batonctl(["jobs", "purge", "--state", "dead", "--older-than", "24h"], port: port)
            #expect(r.status == 0 && r.out.contains("purged 0 dead jobs"))

            // locks release --force: the waiter gets the lock
            r = try await batonctl(["locks", "release", "reports/daily", "--force"], port: port)
            #expect(r.status == 0 && r.out.contains("token \(token)"))
            guard case .granted = try await waiting.value else { Issue.record("waiter not granted after a forced release"); return }

            // watch, once
            r = try await batonctl(["watch", "--count", "1"], port: port)
            #expect(r.status == 0 && r.out.contains("locks 1 held") && r.out.contains("waiter-1"))
            r = try await batonctl(["watch", "--count", "1", "--output", "json"], port: port)
            #expect((try json(r.out) as? [String: Any])?["leases"] != nil)

            await c.shutdown()
            await waiter.shutdown()
        }
    }

    @Test func exitCodes() async throws {
        try await withNode { node in
            let port = node.port
            // 1: refused
            var r = try await batonctl(["locks", "get", "nobody"], port: port)
            #expect(r.status == 1 && r.err == "batonctl: lock 'nobody' is not held\n")
            r = try await batonctl(["locks", "release", "nobody", "--force"], port: port)
            #expect(r.status == 1 && r.err.contains("LOCK_NOT_HELD"))
            r = try await batonctl(["jobs", "get", "999"], port: port)
            #expect(r.status == 1 && r.err.contains("JOB_NOT_FOUND"))
            r = try await batonctl(["jobs", "retry", "999"], port: port)
            #expect(r.status == 1)
            // 2: usage
            r = try await batonctl(["locks", "release", "k"], port: port)
            #expect(r.status == 2 && r.err.contains("--force"))
            r = try await batonctl(["jobs", "purge", "--state", "queued", "--older-than", "1h"], port: port)
            #expect(r.status == 2)
            r = try await batonctl(["jobs", "purge", "--state", "dead", "--older-than", "soon"], port: port)
            #expect(r.status == 2)
            r = try await batonctl(["frobnicate"], port: port)
            #expect(r.status == 2 && r.err.split(separator: "\n").count == 1)
            r = try await batonctl(["status", "--endpoints", "no-port:"], port: port)
            #expect(r.status == 2)
            // 0: help
            r = try await batonctl(["--help"], port: port)
            #expect(r.status == 0 && r.out.contains("Exit codes"))
        }
        // 3: unreachable
        let port = try await freePort()
        let r = try await batonctl(["status"], port: port)
        #expect(r.status == 3 && r.err.hasPrefix("batonctl: cannot reach the cluster"))
    }
}
