"""The patterns' own rules, against a stand-in client: what happens when a grant cannot be confirmed."""

import threading

from baton import ClaimedJob, Completions, Grant, Renewal, errors, patterns


class LateThenGoodGrants:
    """Grants every acquire; the first grant comes with no lease left and its renewal is refused
    (the lease ended before the answer arrived), later ones are sound."""

    name = "stand-in"

    def __init__(self) -> None:
        self.acquires = 0
        self.released = []

    def acquire_lock(self, key, ttl, wait=0.0, owner=None):
        self.acquires += 1
        left = 0 if self.acquires == 1 else int(ttl * 1000)
        return Grant(token=self.acquires, expires_at=0, lease_left_ms=left)

    def renew_lock(self, key, token, ttl):
        if token == 1:
            raise errors.StaleToken(7, "the lease is over")
        return Renewal(expires_at=0, lease_left_ms=int(ttl * 1000))

    def release_lock(self, key, token):
        self.released.append(token)


def test_run_periodic_goes_on_after_a_grant_it_could_not_confirm():
    client = LateThenGoodGrants()
    stop = threading.Event()
    failures = []

    def periodic():
        try:
            patterns.run_periodic(client, "x", 0.05, stop.set, ttl=5.0, stop=stop)
        except BaseException as e:  # noqa: BLE001 - recorded, then asserted on
            failures.append(e)
            stop.set()

    runner = threading.Thread(target=periodic)
    runner.start()
    runner.join(60)  # a guard against a hang
    assert not runner.is_alive()
    assert failures == [], f"run_periodic ended with {failures}"
    assert client.acquires == 2 and client.released == [2], "the late grant was never used nor released"


def test_a_lock_whose_late_grant_cannot_be_confirmed_never_runs_its_block():
    client = LateThenGoodGrants()
    lease = patterns.lock(client, "k", ttl=5.0)
    ran = []
    try:
        with lease:
            ran.append(True)
    except errors.LeaseLost as e:
        assert "could not be confirmed" in str(e)
    else:
        raise AssertionError("the block ran on a lease that may have ended")
    assert ran == [] and client.released == []


class LateThenGoodClaims:
    """Hands out job 1 with no lease left (its claim was answered late) and refuses its extension,
    then job 2 with a sound lease; nothing after that."""

    name = "stand-in"

    def __init__(self, worker: "patterns.JobWorker") -> None:
        self.worker = worker
        self.extended = []
        self.completed = []
        self.handed_back = []
        self.queue = [self._job(1, 0), self._job(2, 30_000)]

    def _job(self, job_id: int, left: int) -> ClaimedJob:
        return ClaimedJob(job_id=job_id, type="t", payload=b"", attempt=1, max_attempts=3, token=job_id,
                          timeout_ms=30_000, lease_expires_at=0, lease_left_ms=left)

    def claim_jobs(self, types, max):
        taken, self.queue = self.queue[:max], self.queue[max:]
        return taken

    def claim_job(self, types, wait=0.0, worker=None):
        self.worker.stop()
        return None

    def extend_job(self, job_id, token, ttl=0.0):
        self.extended.append(job_id)
        if job_id == 1:
            raise errors.ClaimLost(8, "the claim ended before its answer arrived")
        return Renewal(expires_at=0, lease_left_ms=30_000)

    def complete_jobs(self, completions, claim_max=0, types=None, worker=None):
        self.completed += [job_id for job_id, _, _ in completions]
        return Completions(outcomes=(0,) * len(completions), jobs=())

    def abort_job(self, job_id, token):
        self.handed_back.append(job_id)


def test_a_worker_never_runs_a_job_whose_late_claim_cannot_be_confirmed():
    ran = []
    worker = patterns.JobWorker(None, ["t"], lambda job: ran.append(job.job_id) or b"done", concurrency=1)  # type: ignore[arg-type]
    client = LateThenGoodClaims(worker)
    worker.client = client  # type: ignore[assignment]
    runner = threading.Thread(target=worker.run)
    runner.start()
    runner.join(60)  # a guard against a hang
    assert not runner.is_alive()
    assert client.extended[0] == 1, "the late claim was extended before its handler could start"
    assert ran == [2] and client.completed == [2], "the handler ran on a claim that may have ended"
