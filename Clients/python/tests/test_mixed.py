"""Python and Swift replicas of the image worker on one node: one queue, every image analysed once."""

import os
import subprocess
import sys
import tempfile
import threading
import time

from conftest import ROOT, baton_executable, unprivileged
from waiting import eventually

sys.path.insert(0, str(ROOT / "Examples" / "python"))
import image_worker  # noqa: E402
import pytest  # noqa: E402

import baton  # noqa: E402


def test_swift_and_python_workers_share_one_job_queue(node):
    uploads = tempfile.mkdtemp(prefix="baton-mixed-")
    os.chmod(uploads, 0o777)  # the Swift replicas run as nobody
    images = []
    for i in range(12):
        name = f"img-{i}.png"
        with open(os.path.join(uploads, name), "wb") as f:
            f.write(bytes([i]) * 256)
        os.chmod(os.path.join(uploads, name), 0o666)
        images.append(name)
    swift = [
        subprocess.Popen(unprivileged([baton_executable("image-worker"), "run", uploads, "--pattern", "jobs",
                                        "--replica", f"swift-{r}", "--endpoints", node.endpoint, "--interval", "1"]),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for r in "ab"
    ]
    client = node.client("python-a")
    py = image_worker.Uploads(uploads, "python-a")
    worker = baton.JobWorker(client, ["image.analyse"], lambda job: py.analyse(job.payload.decode(), job.token).encode(),
                             concurrency=2, wait=0.5)
    runner = threading.Thread(target=worker.run)
    runner.start()
    try:
        # The Swift replicas' timers queue the images (unique keys: one job each); all work them.
        def all_done():
            jobs = client.call("job_list", type="image.analyse", state=0xFF, after=0, limit=0)["jobs"]
            return len(jobs) == len(images) and all(j["state"] == 2 for j in jobs)

        eventually("every image's job is completed", all_done, timeout=120, every=0.2)
    finally:
        worker.stop()
        runner.join()
        for p in swift:
            p.terminate()
            p.wait()
    jobs = client.call("job_list", type="image.analyse", state=0xFF, after=0, limit=0)["jobs"]
    assert sorted(j["unique_key"] for j in jobs) == sorted(images), "one job per image"
    assert all(j["state"] == 2 and j["attempts"] == 1 for j in jobs), [(j["unique_key"], j["state"], j["attempts"]) for j in jobs]
    by = {j["worker"] for j in jobs}
    assert any(w.startswith("swift-") for w in by) and "python-a" in by, f"both languages worked: {by}"
    for name in images:
        assert os.path.exists(os.path.join(uploads, name + ".analysis"))
    client.close()


def check_scans(lines):
    """The scans in scans.log, checked: each "begin" is followed by its own "end" before any other
    begin (one holder at a time), and the fencing tokens only grow. Only the last scan may lack its
    end (a replica stopped while it scanned). Returns the replicas that scanned, one entry a scan."""
    scanners = []
    open_scan = None
    last_token = 0
    for number, line in enumerate(lines, 1):
        what, replica, token = line.split()
        token = int(token)
        if what == "begin":
            assert open_scan is None, f"line {number}: {replica} began a scan while {open_scan} held the lock"
            assert token > last_token, f"line {number}: token {token} after {last_token}"
            open_scan, last_token = (replica, token), token
            scanners.append(replica)
        else:
            assert open_scan == (replica, token), f"line {number}: {replica} ended {token}, open was {open_scan}"
            open_scan = None
    return scanners


def test_swift_and_python_replicas_share_one_lock(node):
    uploads = tempfile.mkdtemp(prefix="baton-mixed-lock-")
    os.chmod(uploads, 0o777)  # the Swift replicas run as nobody
    log = os.path.join(uploads, "scans.log")
    open(log, "w").close()
    os.chmod(log, 0o666)
    swift = [
        subprocess.Popen(unprivileged([baton_executable("image-worker"), "run", uploads, "--pattern", "lock",
                                        "--replica", f"swift-{r}", "--endpoints", node.endpoint, "--interval", "1"]),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for r in "ab"
    ]
    stop = threading.Event()
    clients = [node.client(f"python-{r}") for r in "ab"]
    # Every replica's timer fires once a second, as the Swift ones' do: with the Python timers at
    # 0.2 s, the two Python replicas kept the lock ~95 % of the time and the Swift replicas, trying
    # once a second, often scanned fewer than twice in two minutes (about one run in two failed,
    # on the build before issue 33 as on this one).
    python = [threading.Thread(target=image_worker.scan_under_lock,
                               args=(c, image_worker.Uploads(uploads, c.name), 1.0, stop)) for c in clients]
    for t in python:
        t.start()
    try:
        # New uploads keep every scan busy for a while, so the replicas contend for the lock.
        for i in range(600):  # until each language scanned twice; a guard against a hang
            with open(os.path.join(uploads, f"img-{i}.png"), "wb") as f:
                f.write(bytes([i % 256]) * 64)
            os.chmod(os.path.join(uploads, f"img-{i}.png"), 0o666)
            with open(log) as f:
                scanners = check_scans(f.read().splitlines())
            if sum(s.startswith("swift-") for s in scanners) >= 2 and sum(s.startswith("python-") for s in scanners) >= 2:
                break
            time.sleep(0.2)
    finally:
        stop.set()
        for t in python:
            t.join()
        for p in swift:
            p.terminate()
            p.wait()
        for c in clients:
            c.close()
    with open(log) as f:
        scanners = check_scans(f.read().splitlines())
    assert sum(s.startswith("swift-") for s in scanners) >= 2, scanners
    assert sum(s.startswith("python-") for s in scanners) >= 2, scanners


def test_the_scan_check_sees_two_holders_at_once():
    assert check_scans(["begin a 1", "end a 1", "begin b 2"]) == ["a", "b"]
    with pytest.raises(AssertionError, match="while"):
        check_scans(["begin a 1", "begin b 2", "end a 1", "end b 2"])
    with pytest.raises(AssertionError, match="token"):
        check_scans(["begin a 2", "end a 2", "begin b 1", "end b 1"])
