"""The blocking client against a real node."""

import threading

import pytest

from baton import Busy, Completions, ErrorCode, JobAdded, errors, patterns

from waiting import eventually, eventually_async


def test_the_node_runs_without_privileges_and_answers(node):
    with node.client() as c:
        assert c.ping() > 0


def test_lock_grant_busy_stale_and_release(node):
    with node.client("a") as a, node.client("b") as b:
        granted = a.acquire_lock("k", ttl=10)
        assert granted.granted and granted.token > 0 and granted.lease_left_ms > 0
        busy = b.acquire_lock("k", ttl=10)
        assert busy == Busy(holder="a", expires_at=granted.expires_at)
        with pytest.raises(errors.StaleToken):
            a.release_lock("k", granted.token + 1)
        a.release_lock("k", granted.token)
        assert a.get_lock("k") is None
        with pytest.raises(errors.LockNotHeld):
            a.call("lock_force_release", key="k")


def test_jobs_unique_claim_complete_fail(node):
    with node.client() as c:
        first = c.add_job("t", b"x", unique_key="u")
        assert first.created is True
        assert c.add_job("t", b"x", unique_key="u") == JobAdded(first.job_id, created=False)
        job = c.claim_job(["t"])
        assert job.payload == b"x" and job.attempt == 1
        c.complete_job(job.job_id, job.token, b"done")
        with pytest.raises(errors.ClaimLost):
            c.complete_job(job.job_id, job.token, b"again")
        with pytest.raises(errors.JobNotFound):
            c.get_job(999)
        assert c.get_job(job.job_id).result == b"done"


def test_many_requests_in_flight_from_many_threads(node):
    with node.client() as c:
        ids = []
        lock = threading.Lock()

        def add(i):
            r = c.add_job("p", str(i).encode())
            with lock:
                ids.append(r.job_id)

        threads = [threading.Thread(target=add, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(ids) == list(range(1, 51))


def test_a_retry_with_the_same_sequence_is_applied_once(node):
    with node.client() as c:
        request = {"sequence": 77, "type": "once", "payload": b"", "priority": 0, "delay_ms": 0, "max_attempts": 0,
                   "timeout_ms": 0, "backoff_ms": 0, "unique_key": ""}
        from baton import protocol

        first = c._exchange(c._connect(), protocol.Request("job_add", dict(request)))
        again = c._exchange(c._connect(), protocol.Request("job_add", dict(request)))
        assert first == again
        other = dict(request, type="other")
        with pytest.raises(errors.SequenceReused):
            c._exchange(c._connect(), protocol.Request("job_add", other))


def test_a_lock_is_renewed_while_held_and_released_after(node):
    with node.client() as c:
        with patterns.lock(c, "reports/daily", ttl=0.6) as lease:
            threading.Event().wait(1.5)  # two renewals at least; the outcome is checked, not the time
            assert lease.held
            assert c.get_lock("reports/daily").token == lease.token
        assert c.get_lock("reports/daily") is None


def test_the_worker_completes_and_fails_jobs(node):
    with node.client() as c:
        for payload in (b"1", b"2", b"boom"):
            c.add_job("w", payload, max_attempts=1)
        seen = []

        def handler(job):
            if job.payload == b"boom":
                raise RuntimeError("bad input")
            seen.append(job.payload)
            return b"ok"

        worker = patterns.JobWorker(c, ["w"], handler, concurrency=2, wait=0.2)
        t = threading.Thread(target=worker.run)
        t.start()
        eventually("the three jobs are settled", lambda: [c.get_job(i).state for i in (1, 2, 3)] == [2, 2, 3])
        worker.stop()
        t.join()
        assert sorted(seen) == [b"1", b"2"]
        assert [c.get_job(i).state for i in (1, 2, 3)] == [2, 2, 3]  # completed, completed, dead
        assert c.get_job(3).last_error == "RuntimeError: bad input"


def test_a_batch_adds_every_job_or_none_and_a_batch_claim_takes_several(node):
    from baton import job_spec

    with node.client() as c:
        added = c.add_jobs([job_spec("b", b"1"), job_spec("b", b"2", unique_key="u"), job_spec("b", b"3", unique_key="u")])
        assert [a.created for a in added] == [True, True, False]
        assert added[2].job_id == added[1].job_id
        with pytest.raises(errors.InvalidArgument) as refused:
            c.add_jobs([job_spec("b", b"4"), job_spec("", b"5")])
        assert "job 1 of the batch" in str(refused.value)
        with pytest.raises(errors.InvalidArgument):
            c.add_jobs([])
        assert len(c.list_jobs("b").jobs) == 2, "a job of a refused batch was added"
        claimed = c.claim_jobs(["b"], max=5)
        assert sorted(j.payload for j in claimed) == [b"1", b"2"]
        assert len({j.token for j in claimed}) == 2
        assert c.claim_jobs(["b"], max=5) == []
        for j in claimed:
            c.complete_job(j.job_id, j.token)


def test_a_complete_batch_completes_each_on_its_own_then_claims(node):
    import asyncio

    from baton import aio, job_spec

    with node.client() as c:
        c.add_jobs([job_spec("cb", str(i).encode()) for i in range(6)])
        claimed = c.claim_jobs(["cb"], max=3)
        completions = [(j.job_id, j.token, j.payload) for j in claimed]
        completions[1] = (completions[1][0], completions[1][1] + 1000, b"")  # not its claim
        done = c.complete_jobs(completions, claim_max=2, types=["cb"])
        assert done.outcomes == (0, ErrorCode.CLAIM_LOST, 0)
        assert len(done.jobs) == 2
        assert c.get_job(claimed[0].job_id).result == claimed[0].payload
        assert c.get_job(claimed[1].job_id).state == 1, "a lost completion changed its job"
        with pytest.raises(errors.InvalidArgument):
            c.complete_jobs([])

    async def main():
        async with aio.Client([node.endpoint], name="aio-complete-batch") as a:
            rest = await a.complete_jobs([], claim_max=10, types=["cb"])
            assert rest.outcomes == () and len(rest.jobs) == 1
            job = rest.jobs[0]
            done = await a.complete_jobs([(job.job_id, job.token, b"r")])
            assert done == Completions(outcomes=(0,), jobs=())

    asyncio.run(main())


def test_both_workers_take_batches_and_hand_back_what_they_did_not_start(node):
    import asyncio

    from baton import aio, job_spec

    with node.client() as c:
        c.add_jobs([job_spec("t", str(i).encode()) for i in range(40)])
        done = []

        def handler(job):
            done.append(job.payload)
            return b"ok"

        worker = patterns.JobWorker(c, ["t"], handler, concurrency=4, wait=0.2)
        t = threading.Thread(target=worker.run)
        t.start()
        eventually("the threaded worker did every job", lambda: len(done) == 40)
        worker.stop()
        t.join()
        assert sorted(done) == sorted(str(i).encode() for i in range(40))
        assert c.running_jobs("t") == 0, "a claimed job was neither run nor handed back"
        assert all(j.state == 2 and j.result == b"ok" for j in c.list_jobs("t").jobs), "a job was not completed"

    async def main():
        async with aio.Client([node.endpoint], name="aio-batches") as a:
            await a.add_jobs([job_spec("v", str(i).encode()) for i in range(40)])
            seen = []

            async def handle(job):
                seen.append(job.payload)
                return b"ok"

            w = aio.JobWorker(a, ["v"], handle, concurrency=4, wait=0.2)
            run = asyncio.ensure_future(w.run())
            async def all_seen():
                return len(seen) == 40

            await eventually_async("the asyncio worker did every job", all_seen)
            w.stop()
            await run
            assert sorted(seen) == sorted(str(i).encode() for i in range(40))
            assert await a.running_jobs("v") == 0
            assert all(j.state == 2 and j.result == b"ok" for j in (await a.list_jobs("v")).jobs)

    asyncio.run(main())


def test_the_asyncio_client_pipelines_and_raises_per_code(node):
    import asyncio

    from baton import aio

    async def main():
        async with aio.Client([node.endpoint], name="aio") as c:
            assert await c.ping() > 0
            added = await asyncio.gather(*(c.add_job("a", str(i).encode()) for i in range(50)))
            assert sorted(r.job_id for r in added) == list(range(1, 51))
            lock = await c.acquire_lock("k", ttl=5)
            with pytest.raises(errors.StaleToken):
                await c.release_lock("k", lock.token + 1)
            await c.release_lock("k", lock.token)
            job = await c.claim_job(["a"])
            await c.complete_job(job.job_id, job.token)

    asyncio.run(main())


def test_schedules_put_get_list_trigger_pause_delete(node):
    with node.client() as c:
        assert c.put_schedule("nightly", type="report", cron="0 3 * * *") is True
        assert c.put_schedule("nightly", type="report", cron="0 3 * * *") is False
        s = c.get_schedule("nightly")
        assert s.cron == "0 3 * * *" and s.type == "report" and s.fires == 0
        assert [x.name for x in c.list_schedules()] == ["nightly"]
        job_id = c.trigger_schedule("nightly")
        assert c.get_job(job_id).type == "report"
        c.pause_schedule("nightly")
        assert c.get_schedule("nightly").paused is True
        with pytest.raises(errors.InvalidArgument):
            c.put_schedule("bad", type="t", cron="61 * * * *")
        with pytest.raises(ValueError):
            c.put_schedule("bad", type="t", every=1, overlap="sometimes")
        c.delete_schedule("nightly")
        assert c.get_schedule("nightly") is None


def test_a_one_second_schedule_fires_slot_jobs(node):
    with node.client() as c:
        c.put_schedule("tick", type="tick", every=1, overlap="allow")
        eventually("two slots fired", lambda: getattr(c.get_schedule("tick"), "fires", 0) >= 2)
        jobs = c.list_jobs("tick").jobs
        slots = [int(j.unique_key.rsplit(":", 1)[1]) for j in jobs]
        assert len(slots) >= 2 and len(set(slots)) == len(slots) and all(s % 1000 == 0 for s in slots)


def test_run_periodic_runs_on_one_replica(node):
    with node.client("r1") as a, node.client("r2") as b:
        runs = []
        stop = threading.Event()
        threads = [threading.Thread(target=patterns.run_periodic, args=(c, "scan", 0.2, lambda n=n: runs.append(n)),
                                    kwargs={"ttl": 2.0, "stop": stop}) for n, c in (("a", a), ("b", b))]
        for t in threads:
            t.start()
        eventually("three runs", lambda: len(runs) >= 3)
        stop.set()
        for t in threads:
            t.join()
        assert len(runs) >= 3
        assert len(set(runs)) == 1, "one replica holds the lock and runs them all"


def test_a_lost_lease_is_visible(node):
    with node.client("holder") as c, node.client("admin") as admin:
        lost = []
        with patterns.lock(c, "contested", ttl=0.6, on_lost=lambda lease: lost.append(lease.token)) as lease:
            admin.call("lock_force_release", key="contested")  # an operator breaks the lock
            assert lease.lost.wait(30), "the next renewal fails and says so"  # a guard against a hang
            assert not lease.held
        assert lost == [lease.token]
        # Nothing was released on its behalf: whoever holds the lock now keeps it.
        assert admin.get_lock("contested") is None


def test_a_paused_node_makes_the_lease_lost_before_it_can_end(node):
    import os
    import signal

    with node.client("holder", request_timeout=30) as c:
        lost = []
        with patterns.lock(c, "paused", ttl=1.0, on_lost=lambda lease: lost.append(lease.token)) as lease:
            os.kill(node.process.pid, signal.SIGSTOP)  # renewals go unanswered
            try:
                assert lease.lost.wait(60), "the watch says so without an answer"  # a guard against a hang
            finally:
                os.kill(node.process.pid, signal.SIGCONT)
            assert not lease.held
        assert lost == [lease.token]
