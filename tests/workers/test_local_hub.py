"""The local model hub (`drover_sandbox.hub`): the hub's HTTP layout that huggingface_hub uses,
Range requests, error codes, deterministic builds, and the `drover local hub` command."""

from __future__ import annotations

import argparse
import hashlib

import httpx
import pytest
from huggingface_hub import HfApi

from drover_sandbox.hub import cli
from drover_sandbox.hub.builder import build_tiny_gpt2


def test_model_info_and_tree_list_every_file_with_sizes(hub, tiny_gpt2):
    api = HfApi(endpoint=hub.url, token=False)
    info = api.model_info("drover-local/tiny-gpt2", revision="main")
    names = sorted(s.rfilename for s in info.siblings)
    assert names == sorted(p.name for p in tiny_gpt2.iterdir() if p.name != ".drover-built")
    assert len(info.sha) == 40
    tree = {f.path: f.size for f in api.list_repo_tree("drover-local/tiny-gpt2", revision=info.sha)}
    assert tree["model.safetensors"] == (tiny_gpt2 / "model.safetensors").stat().st_size
    minilm = api.list_repo_tree("drover-local/all-minilm-l6-v2", recursive=True)
    assert "1_Pooling/config.json" in {f.path for f in minilm}


def test_resolve_sends_hub_headers_and_honours_range_requests(hub, tiny_gpt2):
    url = f"{hub.url}/drover-local/tiny-gpt2/resolve/main/model.safetensors"
    blob = (tiny_gpt2 / "model.safetensors").read_bytes()
    head = httpx.head(url)
    assert head.status_code == 200
    assert head.headers["etag"] == f'"{hashlib.sha256(blob).hexdigest()}"'
    assert int(head.headers["content-length"]) == len(blob)
    assert len(head.headers["x-repo-commit"]) == 40
    part = httpx.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-199/{len(blob)}"
    assert part.content == blob[100:200]
    tail = httpx.get(url, headers={"Range": "bytes=-10"})
    assert tail.content == blob[-10:]
    assert httpx.get(url, headers={"Range": f"bytes={len(blob)}-"}).status_code == 416


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/api/models/drover-local/nope/revision/main", "RepoNotFound"),
        ("/api/models/drover-local/tiny-gpt2/revision/v9", "RevisionNotFound"),
        ("/drover-local/tiny-gpt2/resolve/main/nope.bin", "EntryNotFound"),
    ],
)
def test_missing_things_answer_404_with_the_hub_error_code(hub, path, code):
    response = httpx.get(hub.url + path)
    assert response.status_code == 404
    assert response.headers["x-error-code"] == code


def test_dataset_repos_are_served_under_datasets(hub):
    response = httpx.get(f"{hub.url}/datasets/drover-local/support-chat/resolve/main/train.jsonl")
    assert response.status_code == 200
    assert '"messages"' in response.text.splitlines()[0]


def test_tiny_gpt2_build_is_deterministic(tmp_path):
    builds = [tmp_path / "one", tmp_path / "two"]
    for out in builds:
        out.mkdir()
        build_tiny_gpt2(out, warm_up_steps=3)  # the same procedure as the hub's, shorter
    for name in ("model.safetensors", "tokenizer.json", "config.json", "chat_template.jinja"):
        assert (builds[0] / name).read_bytes() == (builds[1] / name).read_bytes(), name


def test_drover_local_hub_command_takes_port_and_data_dir_and_binds_loopback_only(capsys):
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--port", "9001", "--data-dir", "/tmp/d"])
    assert (args.port, args.data_dir, args.host) == (9001, "/tmp/d", "127.0.0.1")
    assert cli.main(parser.parse_args(["--host", "0.0.0.0"])) == 2
    assert "loopback only" in capsys.readouterr().out


@pytest.fixture
def gated_repo(hub_models, tiny_gpt2):
    """A copy of tiny-gpt2 gated with one token, as a gated model (e.g. Llama) on the hub."""
    import shutil

    repo = hub_models / "drover-local" / "tiny-gpt2-gated"
    shutil.copytree(tiny_gpt2, repo, dirs_exist_ok=True)
    (repo / ".drover-gate").write_text("hf_sentinel_gate_token\n")
    yield "drover-local/tiny-gpt2-gated"
    shutil.rmtree(repo)


def test_a_gated_repo_lists_to_anyone_but_downloads_only_with_its_token(hub, gated_repo, tmp_path):
    # What huggingface_hub raises is its own reading of the hub's answer (utils/_http.py,
    # hf_raise_for_status): X-Error-Code GatedRepo -> GatedRepoError; a 401 "Invalid credentials
    # in Authorization header" -> a plain HfHubHTTPError.
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    info = HfApi(endpoint=hub.url, token=False).model_info(gated_repo)
    assert info.gated == "manual"
    assert ".drover-gate" not in {s.rfilename for s in info.siblings}
    with pytest.raises(GatedRepoError):
        hf_hub_download(
            gated_repo, "config.json", endpoint=hub.url, token=False, cache_dir=tmp_path
        )
    with pytest.raises(HfHubHTTPError) as wrong:
        hf_hub_download(
            gated_repo,
            "config.json",
            endpoint=hub.url,
            token="hf_not_the_token",
            cache_dir=tmp_path,
        )
    assert not isinstance(wrong.value, RepositoryNotFoundError)
    assert wrong.value.response.status_code == 401
    path = hf_hub_download(
        gated_repo,
        "config.json",
        endpoint=hub.url,
        token="hf_sentinel_gate_token",
        cache_dir=tmp_path,
    )
    assert path.endswith("config.json")
