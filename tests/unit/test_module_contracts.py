"""The modules' contracts, run through real Ansible on localhost.

- A module that reads (`*_info`, gpu_info) changes nothing and never reports `changed`: the directory it
  reads is byte-, mtime- and inode-identical afterwards.
- A module that changes state predicts its real run in check mode, in community.docker's rhythm:
  check -> apply -> check again -> apply again; both first runs changed and say the same thing, the
  second round changes nothing (tests/unit/ansible_module.py).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_module import assert_check_predicts_apply, run_module, run_rounds

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted((ROOT / "plugins" / "modules").glob("*.py"))
# Readers not named *_info: gpu_info's name predates the rule; plan computes on the controller and changes nothing.
READERS = {"gpu_info", "plan", "role_arguments"}


def documentation(path: Path) -> dict[str, Any]:
    match = re.search(r'^DOCUMENTATION = r"""\n(.*?)^"""', path.read_text(), re.DOTALL | re.MULTILINE)
    assert match, f"{path.name} has no DOCUMENTATION"
    doc: dict[str, Any] = yaml.safe_load(match.group(1))
    return doc


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_every_module_takes_its_attributes_from_the_shared_fragment(path: Path) -> None:
    doc = documentation(path)
    fragments = doc.get("extends_documentation_fragment", [])
    assert "wideep.gb200._attributes" in fragments
    assert "wideep.gb200._attributes.posix" in fragments
    # a module states its support (and details); what an attribute means is said once, in the fragment
    for name, attribute in (doc.get("attributes") or {}).items():
        assert "description" not in attribute, f"{path.stem}: attribute {name} repeats the fragment's description"
        assert "support" in attribute, f"{path.stem}: attribute {name} states no support"
    reader = path.stem.endswith(("_info", "_facts")) or path.stem in READERS  # *_facts: they set facts, change nothing
    assert ("wideep.gb200._attributes.info_module" in fragments) == reader
    if reader:
        assert "attributes" not in doc, f"{path.stem}: a reader's attributes are the info_module fragment's"
        action = ROOT / "plugins" / "action" / path.name  # a module whose work an action plugin does (or answers for it)
        for code_path in [action if action.exists() else path]:
            code = code_path.read_text()
            said = re.search(r"(exit_json|update)\(\s*changed=False,", code) or re.search(r"""return \{\s*"changed": False,""", code)
            assert said, f"{code_path.relative_to(ROOT)} must say changed=False"


# ------------------------------------------------------------------------------ the weights


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


FILES = {
    "config.json": b'{"architectures": ["DeepseekV3ForCausalLM"]}\n',
    "model-00001-of-00002.safetensors": b"A" * 300_000,
    "model-00002-of-00002.safetensors": b"B" * 200_000,
}
MANIFEST = [{"path": path, "size": len(data), "sha256": sha256(data)} for path, data in FILES.items()]


def write_model(dest: Path, files: dict[str, bytes]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        (dest / rel).write_bytes(data)


def tree(root: Path) -> dict[str, tuple[bytes, int, int, int]]:
    """Every file and directory under root: content, mode, mtime_ns, inode."""
    out = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        out[str(path.relative_to(root))] = (path.read_bytes() if path.is_file() else b"", info.st_mode, info.st_mtime_ns, info.st_ino)
    return out


def test_model_weights_info_reads_only(tmp_path: Path) -> None:
    dest = tmp_path / "model"
    write_model(dest, {**FILES, "model-00002-of-00002.safetensors": b"X" * 200_000})  # one corrupt, nothing stamped
    (dest / ".wideep").mkdir()
    (dest / ".wideep" / "COMPLETE").write_text(json.dumps("0" * 64))  # left from another manifest
    before = tree(tmp_path)
    for flags in ((), ("--check",)):
        rc, result, output = run_module("model_weights_info", json.dumps({"dest": str(dest), "manifest": MANIFEST}), *flags)
        assert rc == 0, output
        assert result["changed"] is False
        assert result["corrupt"] == ["model-00002-of-00002.safetensors"]
        assert result["complete"] is False
        assert result["marker"] == "stale"
        assert result["missing_bytes"] == 200_000
        assert result["hashed_bytes"] == 500_000 + len(FILES["config.json"])  # nothing stamped: all hashed
        assert "removed" not in result and "stamps" not in result
        assert tree(tmp_path) == before, "model_weights_info changed the directory it read"


def mark(dest: Path, **extra: Any) -> list[dict[str, Any]]:
    return run_rounds("model_weights_mark", {"dest": str(dest), "manifest": MANIFEST, **extra})


def test_model_weights_mark_removes_the_corrupt_file_and_stamps_the_rest_as_check_mode_said(tmp_path: Path) -> None:
    dest = tmp_path / "model"
    write_model(dest, {**FILES, "model-00002-of-00002.safetensors": b"X" * 200_000})
    results = mark(dest)
    assert_check_predicts_apply(results, ignore=["free_bytes"])
    _check, apply, _check_again, apply_again = results
    assert apply["removed"] == ["model-00002-of-00002.safetensors"]
    assert apply["stamped"] == ["config.json", "model-00001-of-00002.safetensors"]
    assert (apply["marked"], apply["unmarked"]) == (False, False)
    assert not (dest / "model-00002-of-00002.safetensors").exists()
    stamps = json.loads((dest / ".wideep" / "stamps.json").read_text())
    assert sorted(stamps) == ["config.json", "model-00001-of-00002.safetensors"]
    assert not (dest / ".wideep" / "COMPLETE").exists()
    # the second round trusts the stamps (hashes nothing) and sees the removed file as missing
    assert apply_again["hashed_bytes"] == 0
    assert apply_again["files"]["model-00002-of-00002.safetensors"]["state"] == "missing"
    assert (apply_again["removed"], apply_again["stamped"]) == ([], [])


def test_model_weights_mark_marks_a_complete_copy_as_check_mode_said(tmp_path: Path) -> None:
    dest = tmp_path / "model"
    write_model(dest, FILES)
    results = mark(dest)
    assert_check_predicts_apply(results, ignore=["free_bytes"])
    apply = results[1]
    assert apply["complete"] is True and apply["marked"] is True and apply["index_problems"] == []
    assert json.loads((dest / ".wideep" / "COMPLETE").read_text()) == apply["digest"]
    assert results[3]["marked"] is False


def test_model_weights_mark_unmarks_a_copy_that_lost_a_file(tmp_path: Path) -> None:
    dest = tmp_path / "model"
    write_model(dest, FILES)
    assert mark(dest)[1]["marked"] is True  # complete, stamped and marked
    (dest / "config.json").unlink()
    results = mark(dest)
    assert_check_predicts_apply(results, ignore=["free_bytes"])
    assert results[1]["unmarked"] is True and results[1]["complete"] is False
    assert not (dest / ".wideep" / "COMPLETE").exists()


def test_model_weights_mark_with_repair_and_marking_off_changes_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "model"
    write_model(dest, {**FILES, "model-00002-of-00002.safetensors": b"X" * 200_000})
    (dest / ".wideep").mkdir()
    # stamps as the relay records them: nothing left to stamp, so only repair could change anything
    stamps = {}
    for entry in MANIFEST[:2]:
        info = os.stat(dest / entry["path"])
        stamps[entry["path"]] = {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "ino": info.st_ino, "sha256": entry["sha256"]}
    (dest / ".wideep" / "stamps.json").write_text(json.dumps(stamps))
    before = tree(tmp_path)
    rc, result, output = run_module("model_weights_mark", json.dumps({"dest": str(dest), "manifest": MANIFEST, "repair": False, "mark_complete": False}))
    assert rc == 0, output
    assert result["changed"] is False and result["corrupt"] == ["model-00002-of-00002.safetensors"] and result["removed"] == []
    assert tree(tmp_path) == before


def test_model_weights_manifest_writes_its_cache_once_as_check_mode_said(tmp_path: Path) -> None:
    source = tmp_path / "source"
    write_model(source, FILES)
    cache = tmp_path / "cache" / "manifest.json"
    results = run_rounds("model_weights_manifest", {"path": str(source), "cache": str(cache)})
    assert_check_predicts_apply(results)
    assert results[1]["hashed_bytes"] == sum(len(d) for d in FILES.values())
    assert results[3]["hashed_bytes"] == 0  # the cache covered every file
    assert [{k: f[k] for k in ("path", "size", "sha256")} for f in results[1]["files"]] == sorted(MANIFEST, key=lambda e: e["path"])
    assert json.loads(cache.read_text())["files"] == results[1]["files"]


# ------------------------------------------------------------------------------ files


def test_files_writes_what_check_mode_said_and_shows_the_same_diff(tmp_path: Path) -> None:
    dest = tmp_path / "render"
    write_model(dest / "hosts", {"tray1.sh": b"old\n"})
    args = {
        "dest": str(dest),
        "files": {"plan.json": {"content": "{}\n"}, "hosts/tray1.sh": {"content": "new\n", "mode": "0755"}},
    }
    results = run_rounds("files", args, diff=True)
    assert_check_predicts_apply(results)
    assert results[1]["changed_files"] == ["hosts/tray1.sh", "plan.json"]
    assert [d["before"] for d in results[1]["diff"]] == ["old\n", ""]
    assert (dest / "hosts" / "tray1.sh").read_text() == "new\n"
    assert (dest / "hosts" / "tray1.sh").stat().st_mode & 0o777 == 0o755
    assert results[3]["unchanged_files"] == 2


def test_files_removes_absent_entries_and_creates_directories_with_their_mode(tmp_path: Path) -> None:
    """A provisioning role's files in one call (dest /): one written under new directories, one removed."""
    root = tmp_path / "root"
    write_model(root / "etc" / "modules-load.d", {"nvidia-peermem.conf": b"nvidia_peermem\n"})
    args = {
        "dest": str(root),
        "directory_mode": "0750",
        "files": {
            "etc/modprobe.d/nvidia-wideep.conf": {"content": "options nvidia NVreg_EnableStreamMemOPs=1\n"},
            "etc/modules-load.d/nvidia-peermem.conf": {"state": "absent"},
            "etc/never-there.conf": {"state": "absent"},
        },
    }
    results = run_rounds("files", args, diff=True)
    assert_check_predicts_apply(results)
    assert results[1]["changed_files"] == ["etc/modprobe.d/nvidia-wideep.conf", "etc/modules-load.d/nvidia-peermem.conf"]
    assert not (root / "etc" / "modules-load.d" / "nvidia-peermem.conf").exists()
    assert (root / "etc" / "modprobe.d").stat().st_mode & 0o777 == 0o750  # created: directory_mode, not the umask's
    assert results[3]["changed"] is False and results[3]["unchanged_files"] == 3
    # owner root, as the file/template/copy tasks it replaced said: another owner is put right
    written = root / "etc" / "modprobe.d" / "nvidia-wideep.conf"
    os.chown(written, 65534, 65534)
    rc, fixed, output = run_module("files", json.dumps(args))
    assert rc == 0 and fixed["changed_files"] == ["etc/modprobe.d/nvidia-wideep.conf"], output
    assert (written.stat().st_uid, written.stat().st_gid) == (os.geteuid(), os.getegid())
    rc, bad, output = run_module("files", json.dumps({"dest": str(root), "files": {"x": {"state": "absent", "content": "y"}}}))
    assert rc != 0 and "x: state takes only the value absent, and no other key beside it" in output, bad
    rc, bad, output = run_module("files", json.dumps({"dest": str(root), "directories": {"../up": "0700", "etc/x": "rwx"}, "files": {}}))
    assert rc != 0 and "directories: ../up: must be a relative path inside dest" in output and "directories: etc/x: mode 'rwx' is not octal" in output, bad


def test_files_directories_check_mode_predicts_apply(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc" / "secret").mkdir(parents=True)
    (root / "etc" / "secret").chmod(0o755)
    args = {"dest": str(root), "directories": {"etc/secret": "0700", "run/new": "0750"}, "files": {"etc/secret/a.env": {"content": "A=1\n", "mode": "0600"}}}
    results = run_rounds("files", args)
    assert_check_predicts_apply(results)
    assert results[1]["changed_directories"] == ["etc/secret", "run/new"]
    assert (root / "etc" / "secret").stat().st_mode & 0o777 == 0o700 and (root / "run" / "new").stat().st_mode & 0o777 == 0o750
    assert results[3]["changed"] is False and results[3]["changed_directories"] == []


# ------------------------------------------------------------------------------ filters

# plan.py and engine.py belong to the plan and engine-contract work, which documents its own filters.
FILTER_FILES = sorted(p for p in (ROOT / "plugins" / "filter").glob("*.py") if p.stem not in ("plan", "engine"))


def filters_of(path: Path) -> dict[str, Any]:
    module = importlib.import_module(f"ansible_collections.wideep.gb200.plugins.filter.{path.stem}")
    found: dict[str, Any] = module.FilterModule().filters()
    return found


@pytest.mark.parametrize("path", FILTER_FILES, ids=lambda p: p.stem)
def test_a_public_filter_is_documented_in_its_own_file_and_the_rest_are_private(path: Path) -> None:
    for name in filters_of(path):
        if name.startswith("_"):
            continue  # a role's private helper: not documented, may change
        assert path.stem == name, f"public filter {name} lives in {path.name}; give it its own documented file, {name}.py"
        doc = re.search(r'^DOCUMENTATION = r"""\n(.*?)^"""', path.read_text(), re.DOTALL | re.MULTILINE)
        assert doc, f"{path.name} has no DOCUMENTATION"
        assert yaml.safe_load(doc.group(1))["name"] == name
        for block in ("EXAMPLES", "RETURN"):
            assert re.search(rf'^{block} = r"""', path.read_text(), re.MULTILINE), f"{path.name} has no {block}"


def test_cuda_apt_repo_maps_grace_to_sbsa_and_names_what_it_lacks() -> None:
    from ansible.errors import AnsibleFilterError

    cuda_apt_repo = filters_of(ROOT / "plugins" / "filter" / "cuda_apt_repo.py")["cuda_apt_repo"]
    grace = cuda_apt_repo({"distribution": "Ubuntu", "distribution_version": "24.04", "architecture": "aarch64"})
    assert grace["url"] == "https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2404/sbsa/"
    assert grace["sources_path"] == "/etc/apt/sources.list.d/nvidia-cuda.sources"
    with pytest.raises(AnsibleFilterError, match="lack 'architecture'"):
        cuda_apt_repo({"distribution": "Debian", "distribution_version": "12"})
    with pytest.raises(AnsibleFilterError, match="Rocky 9 has no NVIDIA CUDA repository"):
        cuda_apt_repo({"distribution": "Rocky", "distribution_version": "9", "architecture": "x86_64"})
