"""--storage s3://... against a real S3-protocol server (moto's standalone server, started here, stopped after):
a smoke search interrupted like Ctrl+C, resumed, then synced down and ensembled on the local copy.

The endpoint is set the standard way for every AWS client, pyarrow's S3 filesystem (Ray Tune's storage)
included: AWS_ENDPOINT_URL + AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_DEFAULT_REGION.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.procs import cleanup_env, subprocess_env

moto_server = pytest.importorskip("moto.server", reason="moto[server] (PyPI) is not installed: no local S3 server")
boto3 = pytest.importorskip("boto3")

REPO = Path(__file__).resolve().parents[2]
BUCKET, PREFIX, NAME = "experiments", "team/runs", "s3smoke"


def _fix_complete_multipart_root() -> None:
    """moto 5.2.1 answers CompleteMultipartUpload with the root <CompleteMultipartUploadResponse> instead of
    S3's <CompleteMultipartUploadResult>; Arrow (rightly) reads that as an error embedded in a 200 and
    retries forever (getmoto/moto#10055). Rename the root in this in-process server only."""
    from moto.s3.responses import S3Response

    if getattr(S3Response.serialized, "_root_fixed", False):
        return
    original = S3Response.serialized

    def serialized(self, action_result):
        status, headers, body = original(self, action_result)
        if self.data.get("Action") == "CompleteMultipartUpload":
            fix = lambda text: text.replace("CompleteMultipartUploadResponse", "CompleteMultipartUploadResult")
            body = fix(body) if isinstance(body, str) else fix(body.decode()).encode()
        return status, headers, body

    serialized._root_fixed = True
    S3Response.serialized = serialized


@pytest.fixture(scope="module")
def s3_env():
    _fix_complete_multipart_root()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    creds = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
             "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    client = boto3.client("s3", endpoint_url=creds["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    client.create_bucket(Bucket=BUCKET)
    try:
        yield creds, client
    finally:
        server.stop()


def keys(client, prefix: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_search_on_s3_interrupted_resumed_and_ensembled_from_a_synced_copy(s3_env, tmp_path):
    creds, client = s3_env
    env = subprocess_env(**creds)
    cmd = [sys.executable, str(REPO / "run_search.py"), "--storage", f"s3://{BUCKET}/{PREFIX}", "--name", NAME]
    try:
        t0 = time.monotonic()
        # 3 trials x 5 epochs, one at a time, interrupted at the first checkpoint: ~14 epochs are still to run
        # when SIGINT lands (with 3 epochs and the 2nd checkpoint as the trigger, a loaded CI machine once
        # finished the whole 10 s search between the S3 listing and the signal).
        driver = subprocess.Popen(cmd + ["--smoke-test", "--no-wandb", "--num-samples", "3", "--max-epochs", "5",
                                         "--grace-period", "5", "--max-concurrent", "1", "--refit-top-k", "0"],
                                  cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 180
        while not any(k.endswith("checkpoint_000000/checkpoint.pt") for k in keys(client, f"{PREFIX}/{NAME}/")):
            assert driver.poll() is None and time.monotonic() < deadline, driver.communicate()[0][-3000:]
            time.sleep(0.5)
        driver.send_signal(signal.SIGINT)
        first, _ = driver.communicate(timeout=120)
        assert driver.returncode == 130 and "--resume --name s3smoke" in first, first[-3000:]

        resumed = subprocess.run(cmd + ["--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
        wall = time.monotonic() - t0
        assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-3000:]
        assert f"experiment: s3://{BUCKET}/{PREFIX}/{NAME}" in resumed.stdout
        print(f"S3 smoke search (interrupted + resumed): {wall:.1f} s wall")
    finally:
        cleanup_env(env)
    stored = keys(client, f"{PREFIX}/{NAME}/")
    assert any(k.endswith("search_args.json") for k in stored)
    assert len({k.split("/")[3] for k in stored if k.split("/")[3].startswith("trial_")}) == 3

    # Sync down (what `aws s3 sync` does) and work on the local copy: tables, then the ensemble.
    import pyarrow.fs

    local = tmp_path / "synced" / NAME
    s3 = pyarrow.fs.S3FileSystem(endpoint_override=creds["AWS_ENDPOINT_URL"], access_key="test", secret_key="test",
                                 region="us-east-1", scheme="http")
    local.mkdir(parents=True)
    pyarrow.fs.copy_files(f"{BUCKET}/{PREFIX}/{NAME}", str(local), source_filesystem=s3)
    tables = subprocess.run([sys.executable, "-m", "results", str(local)], cwd=REPO, capture_output=True, text=True,
                            timeout=180)
    assert tables.returncode == 0, tables.stderr[-3000:]
    ensemble = subprocess.run([sys.executable, str(REPO / "run_ensemble.py"), str(local), "--top-k", "3"],
                              cwd=REPO, capture_output=True, text=True, timeout=300)
    assert ensemble.returncode == 0, ensemble.stderr[-3000:]
    manifest = json.loads((local / "ensemble" / "manifest.json").read_text())
    assert len(manifest["members"]) == 3 and all(not Path(m["checkpoint"]).is_absolute() for m in manifest["members"])
