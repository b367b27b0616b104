"""Python and Swift replicas of the image worker on one node: one queue, every image analysed once."""

import os
import subprocess
import sys
import tempfile
import threading
import time

from conftest import ROOT, baton_executable, unprivileged

sys.path.insert(0, str(ROOT / "Examples" / "python"))
import image_worker  # noqa: E402

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
    worker = baton.JobWorker(client, ["image.analyse"], lambda job: py.analyse(job["payload"].decode(), job["token"]).encode(),
                             concurrency=2, wait=0.5)
    runner = threading.Thread(target=worker.run)
    runner.start()
    try:
        # The Swift replicas' timers queue the images (unique keys: one job each); all work them.
        deadline = time.monotonic() + 120  # a guard against a hang, not a bound on speed
        while time.monotonic() < deadline:
            jobs = client.call("job_list", type="image.analyse", state=0xFF, after=0, limit=0)["jobs"]
            if len(jobs) == len(images) and all(j["state"] == 2 for j in jobs):
                break
            time.sleep(0.2)
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
