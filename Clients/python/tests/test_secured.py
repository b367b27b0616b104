"""TLS and token authentication from Python, against a node secured as deploy/make-certs.sh makes it."""

import hashlib
import os
import shutil
import ssl
import subprocess
import tempfile

import pytest

from baton import Client, errors
from conftest import ROOT, baton_executable, free_port, unprivileged
from waiting import wait_until_listening


@pytest.fixture
def secured():
    out = tempfile.mkdtemp(prefix="baton-secured-")
    os.chmod(out, 0o755)
    subprocess.run(["bash", str(ROOT / "deploy" / "make-certs.sh"), out, "127.0.0.1", "127.0.0.2", "127.0.0.3"], check=True)
    port = free_port()
    config = os.path.join(out, "node.json")
    with open(config, "w") as f:
        f.write(f'{{"nodeID": "baton-1", "host": "127.0.0.1", "port": {port}, "dataDirectory": null, "metricsPort": 0,'
                f' "tls": {{"certificateFile": "{out}/baton-1.pem", "keyFile": "{out}/baton-1-key.pem"}},'
                f' "auth": {{"adminTokenFile": "{out}/admin.token"}}}}')
    if os.geteuid() == 0:
        for name in os.listdir(out):
            os.chown(os.path.join(out, name), 65534, 65534)
    process = subprocess.Popen(unprivileged([baton_executable(), "serve", "--config", config, "--log-level", "error"]),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_until_listening(process, port)
    context = ssl.create_default_context(cafile=os.path.join(out, "ca.pem"))
    with open(os.path.join(out, "admin.token")) as f:
        token = f.read().strip()
    yield f"127.0.0.1:{port}", context, token
    process.terminate()
    process.wait()
    shutil.rmtree(out, ignore_errors=True)


def test_tls_and_a_token_get_in(secured):
    endpoint, context, token = secured
    with Client([endpoint], tls=context, token=token) as c:
        c.add_job("secured", b"x")
        assert c.get_job(1).type == "secured"


def test_without_a_token_requests_are_refused(secured):
    endpoint, context, _ = secured
    with Client([endpoint], tls=context, retry_timeout=0.2) as c:
        with pytest.raises(errors.Unauthenticated):
            c.add_job("secured", b"x")


def test_a_wrong_token_is_refused(secured):
    endpoint, context, _ = secured
    with Client([endpoint], tls=context, token="x" * 64, retry_timeout=0.2) as c:
        with pytest.raises(errors.Unauthenticated):
            c.ping()


def test_a_node_whose_certificate_the_ca_did_not_sign_is_refused(secured):
    endpoint, _, token = secured
    with Client([endpoint], tls=ssl.create_default_context(), token=token, retry_timeout=0.2) as c:
        with pytest.raises(errors.ConnectionClosed, match="CERTIFICATE_VERIFY_FAILED"):
            c.ping()


def test_a_token_without_the_permission_is_refused_with_its_name(secured):
    endpoint, context, token = secured
    worker_token = "w" * 40
    with Client([endpoint], tls=context, token=token) as admin:
        admin.call("user_add", user="billing")
        admin.call("role_add", role="billing-worker")
        admin.call("role_grant", role="billing-worker", permission={"resource": 2, "actions": 0x0F, "pattern": "billing"})
        admin.call("user_grant", user="billing", role="billing-worker")
        admin.call("token_add", user="billing", token_hash=hashlib.sha256(worker_token.encode()).digest())
    with Client([endpoint], tls=context, token=worker_token) as worker:
        worker.add_job("billing", b"x")
        with pytest.raises(errors.PermissionDenied, match="job:.*:reports"):
            worker.add_job("reports", b"x")
        with pytest.raises(errors.PermissionDenied, match="lock"):
            worker.acquire_lock("billing", ttl=5)
