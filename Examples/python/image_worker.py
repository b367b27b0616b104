#!/usr/bin/env python3
"""The image-analysis example in Python: the same four patterns, keys and job types as the Swift
`image-worker`, so Python and Swift replicas can run side by side against one node.

    pip install ./Clients/python
    python3 Examples/python/image_worker.py upload /tmp/uploads --count 5
    python3 Examples/python/image_worker.py run /tmp/uploads --pattern jobs --replica py-a &
    swift run image-worker run /tmp/uploads --pattern jobs --replica swift-b &
"""

import argparse
import os
import random
import threading
import time
from typing import List, Optional

import baton


class Uploads:
    """The uploads directory: images, and the analysis written next to each."""

    def __init__(self, directory: str, replica: str) -> None:
        self.directory = directory
        self.replica = replica

    def pending(self) -> List[str]:
        files = os.listdir(self.directory) if os.path.isdir(self.directory) else []
        done = {f[: -len(".analysis")] for f in files if f.endswith(".analysis")}
        return sorted(f for f in files if f.endswith(".png") and f not in done)

    def analyse(self, name: str, token: Optional[int]) -> str:
        """"Analyses" an image (a checksum and a pause) and writes the result, unless a write with a
        newer fencing token got there first."""
        with open(os.path.join(self.directory, name), "rb") as f:
            data = f.read()
        time.sleep(0.3)
        checksum = 0
        for b in data:
            checksum = (checksum * 31 + b) & 0xFFFFFFFF
        result = f"{name}: {len(data)} bytes, checksum {checksum}, analysed by {self.replica}"
        if token is not None:
            result += f" with fencing token {token}"
        path = os.path.join(self.directory, name + ".analysis")
        if token is not None and os.path.exists(path):
            last = open(path).read().split()[-1]
            if last.isdigit() and int(last) > token:
                print(f"[{self.replica}] {name}: a newer holder (token {last}) already wrote; skipping")
                return open(path).read()
        with open(path, "w") as f:
            f.write(result + "\n")
        print(f"[{self.replica}] {result}", flush=True)
        return result

    def analyse_new(self, token: Optional[int]) -> None:
        for name in self.pending():
            self.analyse(name, token)

    def note_scan(self, what: str, token: int) -> None:
        """Appends "begin|end <replica> <token>" to scans.log, in one write, so the scans of every
        replica (Swift's too) show in order: a begin after a begin would be two holders at once."""
        fd = os.open(os.path.join(self.directory, "scans.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, f"{what} {self.replica} {token}\n".encode())
        finally:
            os.close(fd)


def scan_under_lock(client: baton.Client, uploads: Uploads, interval: float, stop: threading.Event) -> None:
    """A timer on every replica; the one that takes the lock scans, with renewal and fencing."""
    while not stop.is_set():
        try:
            with baton.lock(client, "images/scan", ttl=10) as lease:
                uploads.note_scan("begin", lease.token)
                uploads.analyse_new(lease.token)
                uploads.note_scan("end", lease.token)
        except baton.LockBusy as busy:
            print(f"[{uploads.replica}] timer fired; {busy.holder} is scanning", flush=True)
        stop.wait(interval)


def run(args: argparse.Namespace) -> None:
    client = baton.Client(args.endpoints.split(","), name=args.replica)
    uploads = Uploads(args.directory, args.replica)
    stop = threading.Event()
    if args.seconds:
        threading.Timer(args.seconds, stop.set).start()
    try:
        if args.pattern == "lock":
            scan_under_lock(client, uploads, args.interval, stop)
        elif args.pattern == "periodic":
            baton.run_periodic(client, "images/scan", args.interval, lambda: uploads.analyse_new(None), stop=stop)
        elif args.pattern == "jobs":
            worker = baton.JobWorker(
                client, ["image.analyse"], lambda job: uploads.analyse(job.payload.decode(), job.token).encode(),
                concurrency=2)
            threading.Thread(target=worker.run, daemon=True).start()
            while not stop.is_set():
                for name in uploads.pending():  # every replica's timer fires; the unique key makes one job
                    added = client.add_job("image.analyse", name.encode(), timeout=30, unique_key=name)
                    if added["created"]:
                        print(f"[{args.replica}] queued {name} as job {added['job_id']}", flush=True)
                stop.wait(args.interval)
            worker.stop()
        elif args.pattern == "schedule":
            # No timer at all: the cluster fires the scan once per interval, as a job.
            client.put_schedule("images/scan", type="image.scan", every=args.interval, timeout=30, overlap="skip")
            worker = baton.JobWorker(client, ["image.scan"], lambda job: (uploads.analyse_new(job["token"]), b"")[1])
            threading.Thread(target=worker.run, daemon=True).start()
            stop.wait()
            worker.stop()
    finally:
        client.close()


def upload(args: argparse.Namespace) -> None:
    os.makedirs(args.directory, exist_ok=True)
    for _ in range(args.count):
        name = f"img-{random.getrandbits(32)}.png"
        with open(os.path.join(args.directory, name), "wb") as f:
            f.write(os.urandom(256))
        print(f"uploaded {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description="Example worker service: analyse newly uploaded images with Baton.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upload", help="Simulate uploads: create fake image files.")
    up.add_argument("directory")
    up.add_argument("--count", type=int, default=5)
    r = sub.add_parser("run", help="Run one replica of the worker service.")
    r.add_argument("directory")
    r.add_argument("--pattern", choices=["lock", "periodic", "jobs", "schedule"], default="jobs")
    r.add_argument("--replica", default=f"py-{os.getpid()}")
    r.add_argument("--endpoints", default=os.environ.get("BATON_ENDPOINTS", "127.0.0.1:7700"))
    r.add_argument("--interval", type=float, default=2.0, help="Seconds between scans.")
    r.add_argument("--seconds", type=float, default=0, help="Stop after this many seconds (0: run until interrupted).")
    args = parser.parse_args()
    upload(args) if args.command == "upload" else run(args)


if __name__ == "__main__":
    main()
