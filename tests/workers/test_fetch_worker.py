"""fetch worker: real downloads from the local hub through huggingface_hub, copies, S3, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from drover_workers.common.digest import MANIFEST, content_digest, sha256_file

TINY = "hf://drover-local/tiny-gpt2@main"


def test_fetch_from_hub_writes_verified_manifest_and_renames_to_digest(
    hub, tmp_path, tiny_gpt2, run_worker
):
    run = run_worker(
        "fetch",
        {"source": {"uri": TINY}, "cacheRoot": str(tmp_path), "name": "tiny-gpt2"},
        env={"HF_ENDPOINT": hub.url},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = run.result
    path = Path(result["path"])
    assert path == tmp_path / "tiny-gpt2" / result["digest"].removeprefix("sha256:")[:12]
    manifest = json.loads((path / MANIFEST).read_text())
    assert manifest["digest"] == result["digest"]
    expected = {p.name: sha256_file(p) for p in tiny_gpt2.iterdir() if p.is_file()}
    expected.pop(".drover-built")
    assert {f: v["sha256"] for f, v in manifest["files"].items()} == expected
    assert result["digest"] == content_digest(expected)
    assert result["sizeBytes"] == sum((tiny_gpt2 / f).stat().st_size for f in expected)
    assert result["revision"] and len(result["revision"]) == 40
    assert result["contextLength"] == 256  # its config's n_positions: what maxModelLen may reach
    assert not (tmp_path / "tiny-gpt2" / ".drover-staging").exists()
    assert any(p.get("phase") == "downloading" for p in run.progress)
    assert json.loads((tmp_path / "tiny-gpt2" / "result.json").read_text()) == result
    from transformers import AutoConfig, AutoTokenizer

    assert AutoConfig.from_pretrained(path).n_layer == 2
    assert AutoTokenizer.from_pretrained(path).chat_template


def test_digest_is_stable_across_cache_roots_and_refetches(hub, tmp_path, run_worker):
    runs = []
    for root in ("a", "a", "b"):
        config = {"source": {"uri": TINY}, "cacheRoot": str(tmp_path / root), "name": "tiny"}
        runs.append(run_worker("fetch", config, env={"HF_ENDPOINT": hub.url}))
    digests = {r.result["digest"] for r in runs}
    assert len(digests) == 1
    assert runs[0].result["path"] == runs[1].result["path"]
    assert len(list((tmp_path / "a" / "tiny").glob("*/" + MANIFEST))) == 1


def test_fetch_dataset_repo_and_token_from_file_is_not_logged(hub, tmp_path, run_worker):
    token = tmp_path / "token"
    token.write_text("hf_secret_value_123\n")
    run = run_worker(
        "fetch",
        {
            "source": {
                "uri": "hf://datasets/drover-local/handbook",
                "credentials": {"tokenFile": str(token)},
            },
            "cacheRoot": str(tmp_path / "c"),
            "name": "handbook",
        },
        env={"HF_ENDPOINT": hub.url},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert (Path(run.result["path"]) / "refunds.md").is_file()
    assert "hf_secret_value_123" not in run.stdout + run.stderr


def _make_big_repo(hub, name: str, size: int) -> Path:
    repo = hub.root / "models" / "drover-test" / name
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "small-a.json").write_text('{"a": 1}')
    (repo / "small-b.txt").write_text("b" * 100)
    (repo / "weights.bin").write_bytes(np.random.default_rng(0).bytes(size))
    return repo


def test_interrupted_fetch_resumes_without_downloading_finished_files_again(
    hub, tmp_path, run_worker, make_worker_env
):
    # huggingface_hub >= 2 downloads each file into a process-unique temporary file, so the unit
    # of resumption is the file: finished files are kept in the staging dir and not fetched again.
    repo = _make_big_repo(hub, "big", 3_000_000)
    config = {"source": {"uri": "hf://drover-test/big"}, "cacheRoot": str(tmp_path), "name": "big"}
    env = make_worker_env({"HF_ENDPOINT": hub.url, "DROVER_WORKER_CONFIG": json.dumps(config)})
    hub.state.throttle_bytes_per_second = 300_000
    hub.state.requests.clear()
    proc = subprocess.Popen(
        [sys.executable, "-m", "drover_workers.fetch"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    staging = tmp_path / "big" / ".drover-staging"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.2)
            done = {p.name for p in staging.glob("*/*") if p.is_file()}
            if {"small-a.json", "small-b.txt"} <= done:
                break
        assert {"small-a.json", "small-b.txt"} <= done, "the small files never finished"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert not (staging.parent / "weights.bin").exists()
    assert not list(staging.glob("*/weights.bin")), "the big file must still be in flight"
    assert not list((tmp_path / "big").glob("*/" + MANIFEST)), "nothing may be final yet"

    hub.state.throttle_bytes_per_second = 0
    hub.state.requests.clear()
    run = run_worker("fetch", config, env={"HF_ENDPOINT": hub.url})
    assert run.returncode == 0, run.stderr[-3000:]
    gets = [Path(r["path"]).name for r in hub.state.requests if r["method"] == "GET"]
    assert gets == ["weights.bin"]
    final = Path(run.result["path"])
    assert sha256_file(final / "weights.bin") == sha256_file(repo / "weights.bin")
    assert not staging.exists()


def test_file_and_pvc_sources_copy_the_same_content_to_the_same_digest(
    tmp_path, tiny_gpt2, run_worker
):
    claim = tmp_path / "pvcs" / "models-claim" / "tiny"
    claim.parent.mkdir(parents=True)
    os.symlink(tiny_gpt2, claim)
    a = run_worker(
        "fetch",
        {"source": {"uri": f"file://{tiny_gpt2}"}, "cacheRoot": str(tmp_path / "c"), "name": "f"},
    )
    b = run_worker(
        "fetch",
        {
            "source": {"uri": "pvc://models-claim/tiny"},
            "cacheRoot": str(tmp_path / "c"),
            "name": "p",
            "pvcRoot": str(tmp_path / "pvcs"),
        },
    )
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    assert a.result["digest"] == b.result["digest"]
    assert a.result["files"] == len([p for p in tiny_gpt2.iterdir() if p.name != ".drover-built"])
    assert (Path(b.result["path"]) / "model.safetensors").is_file()


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"source": {"uri": TINY}, "name": "x"}, "cacheRoot: field required"),
        (
            {"source": {"uri": TINY}, "cacheRoot": "/tmp/x", "name": "x", "colour": 1},
            "colour: unknown field",
        ),
        (
            {"source": {"uri": "ftp://host/m"}, "cacheRoot": "/tmp/x", "name": "x"},
            "source.uri: Value error, unsupported URI scheme 'ftp'",
        ),
        ({"source": {"uri": TINY}, "cacheRoot": "/tmp/x", "name": "Bad_Name"}, "name: Value error"),
        ("{not json", "not valid JSON/YAML"),
    ],
)
def test_bad_config_exits_2_with_a_message_naming_the_field(config, expected, run_worker):
    run = run_worker("fetch", config)
    assert run.returncode == 2
    assert run.result["reason"] == "InvalidConfig"
    assert expected in run.result["error"]
    assert "Traceback" not in run.stderr


def test_unknown_repository_fails_with_a_reason(hub, tmp_path, run_worker):
    run = run_worker(
        "fetch",
        {"source": {"uri": "hf://drover-local/nope"}, "cacheRoot": str(tmp_path), "name": "nope"},
        env={"HF_ENDPOINT": hub.url},
    )
    assert run.returncode == 1
    assert run.result["reason"] == "RepositoryNotFound"
    assert "hf://drover-local/nope" in run.result["error"]


def test_s3_prefix_is_listed_and_downloaded_from_an_s3_compatible_server(
    tmp_path, tiny_gpt2, run_worker
):
    moto_server = pytest.importorskip("moto.server", reason="moto[server] is the local S3 server")
    boto3 = pytest.importorskip("boto3", reason="boto3 is the S3 client the fetch worker uses")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        creds = {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        os.environ.update(creds)
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="models")
        names = [p.name for p in tiny_gpt2.iterdir() if p.name != ".drover-built"]
        for name in names:
            s3.upload_file(str(tiny_gpt2 / name), "models", f"tiny/{name}")
        s3.put_object(Bucket="models", Key="tiny-other/x.bin", Body=b"not ours")
        config = {
            "source": {"uri": "s3://models/tiny", "s3": {"endpointUrl": endpoint}},
            "cacheRoot": str(tmp_path),
            "name": "tiny",
        }
        run = run_worker("fetch", config, env=creds)
        copy = run_worker(
            "fetch",
            {"source": {"uri": f"file://{tiny_gpt2}"}, "cacheRoot": str(tmp_path), "name": "f"},
        )
    finally:
        server.stop()
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(json.loads((Path(run.result["path"]) / MANIFEST).read_text())["files"]) == sorted(
        names
    )
    assert run.result["digest"] == copy.result["digest"]
