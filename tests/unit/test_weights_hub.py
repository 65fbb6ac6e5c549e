"""The Hugging Face source (model_weights_source type hf) against a TEST DOUBLE of the Hub.

The Hub cannot be reached from here, so emulated/hub_double.py serves a synthetic model over the
Hub's HTTP interface on loopback. The first tests check the double itself with the official client
(huggingface_hub: its listing and its downloads), so the double speaks what the Hub speaks; the rest
run wideep.gb200.model_weights_hf through real Ansible against it.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import huggingface_hub
import pytest
from ansible_module import assert_check_predicts_apply, run_module, run_rounds

from ansible_collections.wideep.gb200.plugins.module_utils import _hub as hub

ROOT = Path(__file__).resolve().parents[2]
REPO = "deepseek-ai/DeepSeek-R1"
COMMIT = "56d4cbbb4d29f4355bab4b9a39ccb717a14ad5ad"
TOKEN = "hf_wideepTestTokenNotARealOne0123456789"  # the double's, not a secret

_spec = importlib.util.spec_from_file_location("hub_double", ROOT / "emulated" / "hub_double.py")
assert _spec is not None and _spec.loader is not None
hub_double = importlib.util.module_from_spec(_spec)
sys.modules["hub_double"] = hub_double
_spec.loader.exec_module(hub_double)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hub-model")
    subprocess.run([sys.executable, str(ROOT / "emulated" / "make_model.py"), str(path), "--shards", "6", "--shard-bytes", str(700_000)], check=True)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256(p) for p in sorted(root.rglob("*")) if p.is_file() and ".wideep" not in p.parts}


class Double:
    def __init__(self, model: Path, log: Path, **faults: Any) -> None:
        self.log = log
        self.hub, self.cdn = hub_double.serve(str(model), REPO, COMMIT, log=str(log), **faults)
        self.url = f"http://127.0.0.1:{self.hub.server_address[1]}"

    def requests(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []

    def close(self) -> None:
        for server in (self.hub, self.cdn):
            server.shutdown()
            server.server_close()


@pytest.fixture
def double(model: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Double]:
    faults = getattr(request, "param", {})
    running = Double(model, tmp_path / "requests.jsonl", **faults)
    yield running
    running.close()


def run_hf(args: dict[str, Any], *flags: str) -> tuple[dict[str, Any], str]:
    """wideep.gb200.model_weights_hf on localhost through ansible: (result, all output)."""
    _rc, result, output = run_module("model_weights_hf", json.dumps(args), *flags)
    return result, output


def args_for(double: Double, dest: Path, **extra: Any) -> dict[str, Any]:
    return {"endpoint": double.url, "repo": REPO, "revision": COMMIT, "path": str(dest), "cache": str(dest.parent / "cache.json"), **extra}


# ------------------------------------------------------------------------------------- pure


def test_git_blob_ids_are_gits() -> None:
    # `git hash-object /dev/null` and `printf 'hello\n' | git hash-object --stdin`
    assert hub.git_blob_hasher(0).hexdigest() == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    hasher = hub.git_blob_hasher(6)
    hasher.update(b"hello\n")
    assert hasher.hexdigest() == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_a_source_must_pin_a_commit_and_name_its_parts() -> None:
    good = {"type": "hf", "repo": REPO, "revision": COMMIT, "path": "/raid/hf/DeepSeek-R1"}
    assert hub.source_problems(good) == []
    problems = hub.source_problems({"repo": "DeepSeek-R1", "revision": "main", "path": "raid", "endpoint": "ftp://x"})
    assert len(problems) == 4
    assert problems[0].startswith("model_weights_source.repo 'DeepSeek-R1' is not a Hub model id: write it as <owner>/<name>")
    assert problems[1].startswith("model_weights_source.revision 'main' is not a commit: pin the 40-hex commit id")
    assert "must be an absolute directory" in problems[2] and "must be an http(s) URL" in problems[3]


def listing_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "sha": COMMIT,
        "siblings": [
            {"rfilename": "config.json", "size": 6, "blobId": "ce013625030ba8dba906f756967f9e9ca394464a"},
            {"rfilename": "model-1.safetensors", "size": 9, "blobId": "1" * 40, "lfs": {"sha256": "a" * 64, "size": 9, "pointerSize": 134}},
        ],
    }
    data.update(overrides)
    return data


def test_the_listing_is_parsed_and_checked() -> None:
    listing = hub.parse_listing(listing_data(), REPO, COMMIT)
    assert [(f.path, f.size, f.lfs) for f in listing.files] == [("config.json", 6, False), ("model-1.safetensors", 9, True)]
    assert hub.parse_listing(listing_data(), REPO, COMMIT, ["*.safetensors"]).total_bytes == 9
    with pytest.raises(hub.HubError, match=r"resolved to commit 0{40}: pin"):
        hub.parse_listing(listing_data(sha="0" * 40), REPO, COMMIT)
    with pytest.raises(hub.HubError, match=r"refusing file path '\.\./etc/passwd'"):
        hub.parse_listing(listing_data(siblings=[{"rfilename": "../etc/passwd", "size": 1, "blobId": "1" * 40}]), REPO, COMMIT)
    with pytest.raises(hub.HubError, match="has no size"):
        hub.parse_listing(listing_data(siblings=[{"rfilename": "config.json", "blobId": "1" * 40}]), REPO, COMMIT)


def test_the_manifest_is_cross_checked_with_the_hubs_lfs_sha256() -> None:
    listing = hub.parse_listing(listing_data(), REPO, COMMIT)
    good = [{"path": "config.json", "size": 6, "sha256": "c" * 64}, {"path": "model-1.safetensors", "size": 9, "sha256": "a" * 64}]
    assert hub.manifest_problems(good, listing) == []
    bad = [{"path": "model-1.safetensors", "size": 9, "sha256": "b" * 64}, {"path": "extra.bin", "size": 1, "sha256": "d" * 64}]
    assert hub.manifest_problems(bad, listing) == [
        f"config.json: in {REPO}@{COMMIT[:12]} but not in the manifest",
        "model-1.safetensors: sha256 bbbbbbbbbbbbbbbb... differs from the Hub's LFS sha256 aaaaaaaaaaaaaaaa...",
        f"extra.bin: in the manifest but not in {REPO}@{COMMIT[:12]}",
    ]


# ------------------------------------------------------------- the double vs the official client


def test_the_official_client_lists_the_double_like_the_hub(double: Double, model: Path) -> None:
    info = huggingface_hub.HfApi(endpoint=double.url).model_info(REPO, revision=COMMIT, files_metadata=True)
    assert info.sha == COMMIT
    siblings = {s.rfilename: s for s in info.siblings or []}
    assert set(siblings) == set(model_files(model))
    for name, digest in model_files(model).items():
        lfs = siblings[name].lfs
        assert (lfs.sha256 if lfs else None) == (digest if name.endswith(".safetensors") else None), name
        assert siblings[name].size == (model / name).stat().st_size


@pytest.mark.parametrize("double", [{"token": TOKEN}], indirect=True)
def test_the_official_client_downloads_from_the_double_with_a_token(double: Double, model: Path, tmp_path: Path) -> None:
    for name in ("model.safetensors.index.json", "model-00001-of-000006.safetensors"):
        got = huggingface_hub.hf_hub_download(REPO, name, revision=COMMIT, endpoint=double.url, token=TOKEN, local_dir=tmp_path / "dl")
        assert sha256(Path(got)) == sha256(model / name)
    cdn = [r for r in double.requests() if r["port"] == double.cdn.server_address[1]]
    assert cdn and not any(r["authorization"] for r in cdn)  # the client, too, keeps the token off the CDN
    with pytest.raises(huggingface_hub.errors.HfHubHTTPError):
        huggingface_hub.HfApi(endpoint=double.url).model_info(REPO, revision=COMMIT, token="hf_wrong")


# ------------------------------------------------------------------ model_weights_hf in Ansible


@pytest.mark.parametrize("double", [{"token": TOKEN}], indirect=True)
def test_a_pinned_commit_is_downloaded_verified_and_a_rerun_moves_nothing(double: Double, model: Path, tmp_path: Path) -> None:
    dest = tmp_path / "copy"
    result, output = run_hf(args_for(double, dest, token=TOKEN), "-vvv")
    assert result.get("failed") is not True, output
    assert result["changed"] is True and result["commit"] == COMMIT
    assert model_files(dest) == model_files(model)
    assert {f["path"]: f["sha256"] for f in result["files"]} == model_files(model)
    assert result["downloaded_bytes"] == result["total_bytes"] == sum((model / p).stat().st_size for p in model_files(model))
    assert not list((dest / ".wideep" / "hf-partial").rglob("*.safetensors"))  # nothing left half-written
    assert TOKEN not in output  # no_log: not even in -vvv's module invocation
    assert not any(r["authorization"] for r in double.requests() if r["port"] == double.cdn.server_address[1])
    again, output = run_hf(args_for(double, dest, token=TOKEN))
    assert again["changed"] is False, output
    assert (again["downloaded_bytes"], again["hashed_bytes"], again["published"]) == (0, 0, [])
    assert again["digest"] == result["digest"]


@pytest.mark.parametrize("double", [{"cut_after": 300_000}], indirect=True)
def test_a_dropped_connection_is_resumed_from_where_it_stopped(double: Double, model: Path, tmp_path: Path) -> None:
    dest = tmp_path / "copy"
    result, output = run_hf(args_for(double, dest, workers=1))
    assert result.get("failed") is not True, output
    assert model_files(dest) == model_files(model)
    assert "the connection ended after 300000 of" in output and "trying again (attempt 2)" in output
    ranges = [r["range"] for r in double.requests() if r["range"] and r["port"] == double.cdn.server_address[1]]
    assert ranges == ["bytes=300000-"], double.requests()  # one resume, from the byte where it stopped
    total = result["total_bytes"]
    assert result["downloaded_bytes"] == total  # the resumed file's bytes came once


@pytest.mark.parametrize("double", [{"cut_after": 300_000, "ignore_range": True}], indirect=True)
def test_a_server_that_ignores_range_gets_the_file_from_byte_0(double: Double, model: Path, tmp_path: Path) -> None:
    dest = tmp_path / "copy"
    result, output = run_hf(args_for(double, dest, workers=1))
    assert result.get("failed") is not True, output
    assert model_files(dest) == model_files(model)
    assert result["downloaded_bytes"] == result["total_bytes"] + 300_000  # the cut prefix, then the whole file again


@pytest.mark.parametrize("double", [{"fail_first": 2}], indirect=True)
def test_a_busy_cdn_is_retried_with_backoff(double: Double, model: Path, tmp_path: Path) -> None:
    dest = tmp_path / "copy"
    result, output = run_hf(args_for(double, dest, workers=1))
    assert result.get("failed") is not True, output
    assert model_files(dest) == model_files(model)
    assert output.count("the Hub answered 503") == 2 and "trying again (attempt 3)" in output


@pytest.mark.parametrize("double", [{"fail_first": 100}], indirect=True)
def test_a_cdn_that_stays_down_fails_the_run_naming_the_files(double: Double, tmp_path: Path) -> None:
    result, output = run_hf(args_for(double, tmp_path / "copy", retries=1, workers=6))
    assert result["failed"] is True, output
    assert "model-00001-of-000006.safetensors (SlowDown); gave up after 2 attempts" in result["msg"]
    assert "/cdn/" not in result["msg"] or "?" not in result["msg"]


def test_a_second_download_into_the_same_directory_is_refused(double: Double, tmp_path: Path) -> None:
    dest = tmp_path / "copy"
    (dest / ".wideep").mkdir(parents=True)
    with open(dest / ".wideep" / "hf.lock", "a", encoding="utf-8") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result, output = run_hf(args_for(double, dest))
    assert result["failed"] is True
    assert f"another download into {dest} is still running" in result["msg"], output
    assert not (dest / "config.json").exists()


@pytest.mark.parametrize("double", [{"corrupt": ["model-00003-of-000006.safetensors"]}], indirect=True)
def test_a_corrupted_download_is_refused_and_never_published(double: Double, tmp_path: Path) -> None:
    dest = tmp_path / "copy"
    result, output = run_hf(args_for(double, dest))
    assert result["failed"] is True
    assert "model-00003-of-000006.safetensors: sha256" in result["msg"] and "differs from the Hub's LFS sha256" in result["msg"], output
    assert "the partial file was removed" in result["msg"]
    assert not (dest / "model-00003-of-000006.safetensors").exists()
    assert not (dest / ".wideep" / "hf-partial" / "model-00003-of-000006.safetensors").exists()
    assert (dest / "model-00001-of-000006.safetensors").exists()  # the good files are kept for the next run


def test_a_damaged_local_copy_is_detected_and_fetched_again(double: Double, model: Path, tmp_path: Path) -> None:
    dest = tmp_path / "copy"
    assert run_hf(args_for(double, dest))[0]["changed"] is True
    shard = dest / "model-00002-of-000006.safetensors"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    result, output = run_hf(args_for(double, dest))
    assert result["changed"] is True and result["published"] == [shard.name], output
    assert "differs from the Hub's LFS sha256" in output and "fetching it again" in output
    assert model_files(dest) == model_files(model)


@pytest.mark.parametrize("double", [{"token": TOKEN}], indirect=True)
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"token": "hf_wrong"}, "the Hub answered 401 for model deepseek-ai/DeepSeek-R1 at revision " + COMMIT + ": set model_weights_hf_token"),
        ({"token": TOKEN, "repo": "deepseek-ai/DeepSeek-R2"}, "the Hub has no model deepseek-ai/DeepSeek-R2 at revision"),
        ({"token": TOKEN, "revision": "main"}, f"{REPO}@main resolved to commit {COMMIT}: pin model_weights_source.revision"),
        ({"token": TOKEN, "revision": "0" * 40}, "(RevisionNotFound): check model_weights_source.repo and .revision"),
    ],
    ids=["wrong-token", "unknown-repo", "branch", "unknown-commit"],
)
def test_bad_sources_are_refused_with_the_fix(double: Double, tmp_path: Path, change: dict[str, Any], message: str) -> None:
    result, output = run_hf(args_for(double, tmp_path / "copy", **change))
    assert result["failed"] is True
    assert message in result["msg"], output
    assert "hf_wrong" not in output and TOKEN not in output
    assert not (tmp_path / "copy").exists()  # refused before anything was written


def test_check_mode_reports_what_would_move_and_writes_nothing(double: Double, tmp_path: Path) -> None:
    result, output = run_hf(args_for(double, tmp_path / "copy"), "--check")
    assert result["changed"] is True and result["downloaded_bytes"] == result["total_bytes"] > 0, output
    assert not (tmp_path / "copy").exists() and not (tmp_path / "cache.json").exists()


def test_check_mode_predicts_the_download_and_the_rerun(double: Double, model: Path, tmp_path: Path) -> None:
    """check -> download -> check again -> run again (tests/unit/ansible_module.py): the check names the files and
    bytes the download then moves; the manifest's sha256 of small (non-LFS) files is known only once downloaded."""
    dest = tmp_path / "copy"
    results = run_rounds("model_weights_hf", args_for(double, dest))
    assert_check_predicts_apply(results, ignore=["files", "digest"])
    check, download, check_again, again = results
    assert check["published"] == sorted(model_files(model)) and check["downloaded_bytes"] == check["total_bytes"]
    assert model_files(dest) == model_files(model)
    for later in (check_again, again):
        assert (later["downloaded_bytes"], later["hashed_bytes"], later["published"]) == (0, 0, [])
        assert later["digest"] == download["digest"]


def test_model_weights_source_is_checked_for_every_type() -> None:
    from ansible_collections.wideep.gb200.plugins.plugin_utils.weights.passes import source_problems

    assert source_problems({"type": "path", "path": "/lustre/m", "host": "t0"}) == []
    assert source_problems({"type": "controller", "path": "/data/m"}) == []
    assert source_problems({"type": "hf", "repo": REPO, "revision": COMMIT, "path": "/raid/hf", "host": "t0", "include": ["*.json"]}) == []
    assert source_problems({"type": "s3", "path": "/x"})[0].startswith("model_weights_source must be {type: path, path: /abs/dir, host: <tray>}")
    assert source_problems({"type": "path", "path": "models", "hots": "t0"}) == [
        "model_weights_source.hots is not a setting of a path source (it takes host, path, type): remove it or fix its spelling",
        "model_weights_source.path 'models' must be an absolute directory",
    ]
    assert source_problems({"type": "hf", "repo": REPO, "revision": COMMIT, "path": "/raid/hf", "include": "*.json"}) == [
        "model_weights_source.include must be a list of shell patterns, e.g. ['*.safetensors', '*.json']; got '*.json'"
    ]
