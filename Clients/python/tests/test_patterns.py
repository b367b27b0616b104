"""The patterns' own rules, against a stand-in client: what happens when a grant cannot be confirmed."""

import threading

from baton import Grant, Renewal, errors, patterns


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
