"""The asyncio patterns against a real node: a lock whose loss cancels its block, the job worker, and a
periodic run on one replica."""

import asyncio
import os
import signal

import pytest

from baton import aio, errors

from waiting import eventually_async


async def until(predicate, what):
    """Awaits ``predicate()`` (a coroutine function) turning true."""
    await eventually_async(what, predicate)


def test_an_async_lock_is_renewed_while_held_and_released_after(node):
    async def main():
        async with aio.Client([node.endpoint], name="holder") as c, aio.Client([node.endpoint], name="admin") as admin:
            async with aio.lock(c, "reports/daily", ttl=0.6) as lease:
                seen = [(await admin.get_lock("reports/daily")).expires_at]

                async def renewed_twice():
                    expires = (await admin.get_lock("reports/daily")).expires_at
                    if expires != seen[-1]:
                        seen.append(expires)
                    return len(seen) >= 3

                await until(renewed_twice, "two renewals")
                assert lease.held and not lease.lost.is_set()
                assert (await admin.get_lock("reports/daily")).token == lease.token
            assert await admin.get_lock("reports/daily") is None

    asyncio.run(main())


def test_losing_an_async_lock_cancels_its_block(node):
    async def main():
        async with aio.Client([node.endpoint], name="holder") as c, aio.Client([node.endpoint], name="admin") as admin:
            lost = []
            with pytest.raises(errors.LeaseLost):
                async with aio.lock(c, "contested", ttl=0.6, on_lost=lambda lease: lost.append(lease.token)) as lease:
                    await admin.force_release_lock("contested")  # an operator breaks the lock
                    successor = await admin.acquire_lock("contested", ttl=30)
                    await asyncio.sleep(60)  # cancelled at the next renewal; a guard against a hang
                    pytest.fail("the block ran on after its lease was refused")
            assert lost == [lease.token] and lease.lost.is_set() and not lease.held
            # The task goes on, and nothing was released on its behalf: the successor keeps the lock.
            await asyncio.sleep(0)
            assert (await admin.get_lock("contested")).token == successor.token

    asyncio.run(main())


def test_a_paused_node_cancels_the_block_before_the_lease_can_end(node):
    async def main():
        async with aio.Client([node.endpoint], name="holder", request_timeout=30) as c:
            with pytest.raises(errors.LeaseLost, match="no renewal was confirmed in time"):
                async with aio.lock(c, "paused", ttl=1.0) as lease:
                    os.kill(node.process.pid, signal.SIGSTOP)  # renewals go unanswered
                    try:
                        await asyncio.sleep(60)  # a guard against a hang
                    finally:
                        os.kill(node.process.pid, signal.SIGCONT)
            assert lease.lost.is_set()

    asyncio.run(main())


def test_a_cancellation_from_outside_stays_a_cancellation(node):
    async def main():
        async with aio.Client([node.endpoint], name="holder") as c:
            inside = asyncio.Event()

            async def hold():
                async with aio.lock(c, "outer", ttl=5):
                    inside.set()
                    await asyncio.sleep(60)

            task = asyncio.ensure_future(hold())
            await inside.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await c.get_lock("outer") is None, "released on the way out"

    asyncio.run(main())


def test_the_async_worker_completes_fails_and_gives_up_a_lost_claim(node):
    async def main():
        async with aio.Client([node.endpoint], name="worker") as c, aio.Client([node.endpoint], name="admin") as admin:
            ok = (await admin.add_job("aw", b"1")).job_id
            bad = (await admin.add_job("aw", b"boom", max_attempts=1)).job_id
            slow = (await admin.add_job("aw", b"slow", timeout=1.0)).job_id
            started, cancelled = asyncio.Event(), asyncio.Event()

            async def handler(job):
                if job.payload == b"boom":
                    raise RuntimeError("bad input")
                if job.payload == b"slow":
                    started.set()
                    try:
                        await asyncio.sleep(60)  # a guard against a hang
                    except asyncio.CancelledError:
                        cancelled.set()
                        raise
                return job.payload * 2

            worker = aio.JobWorker(c, ["aw"], handler, concurrency=2, wait=0.2)
            run = asyncio.ensure_future(worker.run())
            await asyncio.wait_for(started.wait(), 30)  # a guard against a hang
            await admin.delete_job(slow)  # the claim is gone: the next extension is refused
            await asyncio.wait_for(cancelled.wait(), 30)

            async def settled():
                return [(await admin.get_job(i)).state for i in (ok, bad)] == [2, 3]

            await until(settled, "the job completed and the failing one dead")
            worker.stop()
            await run
            assert (await admin.get_job(ok)).result == b"11"
            assert (await admin.get_job(bad)).last_error == "RuntimeError: bad input"

    asyncio.run(main())


def test_async_run_periodic_runs_on_one_replica(node):
    async def main():
        async with aio.Client([node.endpoint], name="r1") as a, aio.Client([node.endpoint], name="r2") as b:
            runs = []

            def task(client, replica):
                async def fn():
                    runs.append(replica)
                return asyncio.ensure_future(aio.run_periodic(client, "scan", 0.2, fn, ttl=2.0))

            tasks = [task(a, "a"), task(b, "b")]

            async def three():
                return len(runs) >= 3

            await until(three, "three runs")
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            assert len(set(runs)) == 1, f"one replica holds the lock and runs them all: {runs}"

    asyncio.run(main())
