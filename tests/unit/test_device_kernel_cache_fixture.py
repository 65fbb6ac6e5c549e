"""The kernel-cache mechanism as captured on an NVIDIA H200 with Triton's JIT cache, and its bookkeeping re-run here.

tests/device/kernel_cache/triton_proof.py ran on the H200 (tests/device/captured/kernel_cache_triton.json,
its command in `captured_with`). The first tests read what that run proves; the others re-run, with no
GPU, the collection's code that the run drove (_kernel_cache on a tree of the captured Triton layout, and
the whole orchestration with the script's fake child), so that a change in that code's behaviour fails here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.wideep.gb200.plugins.module_utils import _kernel_cache as kc
from ansible_collections.wideep.gb200.plugins.plugin_utils.plan import kernel_cache as plan_kc
from ansible_collections.wideep.gb200.plugins.plugin_utils.stage import kernel_cache as stage_kc

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "device" / "captured" / "kernel_cache_triton.json"
SCRIPT = ROOT / "tests" / "device" / "kernel_cache" / "triton_proof.py"


def _load_proof() -> Any:
    spec = importlib.util.spec_from_file_location("wideep_device_triton_proof", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


proof = _load_proof()


@pytest.fixture(scope="module")
def captured() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


# ---- what the H200 run proves -----------------------------------------------------------------
def test_captured_on_a_real_gpu_and_says_how(captured: dict[str, Any]) -> None:
    assert captured["dry_run"] is False
    assert captured["captured_with"]["command"].count("tests/device/kernel_cache/triton_proof.py") >= 1
    assert captured["captured_with"]["date"].startswith("20")
    assert "H200" in captured["gpu"]["name"] and "H200" in captured["gpu"]["torch_device_name"]
    # The key's GPU half is the GPU's capability, and torch and nvidia-smi agree on it.
    assert captured["key"]["gpu"] == captured["gpu"]["capability_torch"] == captured["gpu"]["compute_cap_nvidia_smi"] == "9.0"
    versions = captured["versions"]
    assert captured["key"]["image_id"] == f"torch-{versions['torch']}+triton-{versions['triton']}"
    assert versions["driver"] and versions["triton"] and versions["torch"]


def test_the_key_is_the_collections_key_and_the_fixture_is_current(captured: dict[str, Any]) -> None:
    assert captured["key_fields_as_stage_key_of"] is True
    assert sorted(captured["key"]) == sorted(stage_kc.key_of({"config": "c"}, {}, "image-id", "9.0"))
    # The configuration digest is the plan's digest over the kernel set and the kernels' source as they
    # are in this checkout: changing either without capturing again fails here.
    assert captured["key"]["config"] == plan_kc.config_digest(proof.config_material(proof.kernel_set()))
    assert captured["config_material"]["kernels"] == [s["id"] for s in proof.kernel_set()]


def test_cold_compiled_every_kernel_once_and_published_it(captured: dict[str, Any]) -> None:
    cold = captured["cold"]
    wanted = len(proof.kernel_set())
    assert cold["rc"] == 0 and cold["accepted"] is True
    assert cold["kernels_run"] == cold["kernels_ok"] == wanted > 0, cold["failed"]
    assert cold["kernel_dirs"] == cold["scan"]["triton_complete"] == wanted
    assert cold["published"] is True and cold["verify_tray_a"] == "complete"
    assert cold["compile_log_lines"] == 1
    assert captured["compiles"]["tray-a"] == wanted


def test_every_copy_arrived_through_the_relay_and_verifies(captured: dict[str, Any]) -> None:
    fan = captured["fanout"]
    assert fan["method"].startswith("relay"), fan.get("relay_error")
    assert {m["state"] for m in fan["members"].values()} == {"complete"}
    for tray in ("tray-b", "tray-c"):
        assert fan["verify"][tray]["state"] == "complete", fan["verify"][tray]["why"]
        assert fan["verify"][tray]["kernels"]["triton"] == captured["cold"]["kernel_dirs"]
    assert captured["kernels_per_cache"] == {"cold_tray-a": 20, "tray-b": 20, "tray-c": 20}


def test_warm_processes_compiled_nothing_and_were_faster(captured: dict[str, Any]) -> None:
    for tray, warm in captured["warm"].items():
        assert warm["rc"] == 0 and warm["kernels_ok"] == warm["kernels_run"] == len(proof.kernel_set()), tray
        assert warm["compiles"] == 0, tray
        assert warm["new_dirs"] == warm["files_added"] == warm["files_rewritten"] == warm["files_changed"] == warm["files_removed"] == 0, tray
        assert warm["verify_after"] == "complete", tray
        assert warm["seconds"] < captured["cold_seconds"], tray
        assert warm["kernels_seconds"] < captured["cold_kernels_seconds"], tray
    assert captured["compiles"]["tray-b"] == captured["compiles"]["tray-c"] == 0
    assert captured["ratio"] == round(captured["cold_seconds"] / captured["warm_seconds"], 2) > 1
    assert captured["kernels_ratio"] > 1
    assert captured["repeat_run"]["compiles"] == captured["compiles"]


def test_the_compile_counter_counts_compiles_when_there_are_some(captured: dict[str, Any]) -> None:
    # The control: the same cache read at another path. Triton's group files name the files by the
    # path they were compiled at, so it compiled every kernel again, in place; the counter saw it, and
    # so did the marker.
    control = captured["moved_path_control"]
    assert control["compiles"] == control["kernel_dirs_rewritten"] == len(proof.kernel_set())
    assert control["new_dirs"] == 0
    assert control["verify_after"] == "incomplete"


def test_a_changed_configuration_is_another_key_and_compiles_only_the_changed_kernel(captured: dict[str, Any]) -> None:
    changed = captured["changed"]
    assert changed["config_differs"] is True and changed["config"] != captured["key"]["config"]
    assert changed["old_cache_against_new_key"] == "stale"
    run = changed["run_on_scratch_copy_of_old_cache"]
    assert run["rc"] == 0 and run["kernels_ok"] == run["kernels_run"]
    assert run["compiles"] == run["new_kernel_dirs"] == 1
    assert run["files_changed"] == run["files_rewritten"] == 0


def test_stale_and_damaged_caches_are_told_apart(captured: dict[str, Any]) -> None:
    assert captured["stale"]["state"] == "stale" and "gpu" in captured["stale"]["why"]
    assert captured["damaged"]["state"] == "incomplete" and ".cubin" in captured["damaged"]["why"]


def test_the_roles_decisions_on_what_the_trays_held(captured: dict[str, Any]) -> None:
    # 'skip' first: the role precompiles only for a DeepGEMM path; a Triton-only configuration is
    # carried once some tray holds it ('fanout'), then 'ready'.
    assert captured["decisions"] == {"before": "skip", "after_compile": "fanout", "after_fanout": "ready"}


# ---- the bookkeeping, re-run here -------------------------------------------------------------
def _triton_tree(staging: Path, shape: list[dict[str, Any]]) -> None:
    """The captured cache's layout (each directory's file names and sizes), with made-up bytes."""
    for i, directory in enumerate(shape):
        target = staging / "triton" / f"{i:04d}KERNELDIRECTORYNAMEDBYHASH"
        target.mkdir(parents=True)
        for name, size in directory["files"]:
            (target / name).write_bytes(bytes([i % 251 + 1]) * size)


def test_kernel_cache_reads_the_captured_triton_layout(tmp_path: Path, captured: dict[str, Any]) -> None:
    shape = captured["cold"]["cache_shape"]
    root = tmp_path / "root"
    staging = root / kc.STAGING / "cfg"
    _triton_tree(staging, shape)
    found = kc.scan(str(staging))
    assert found["triton"]["complete"] == captured["cold"]["scan"]["triton_complete"] == captured["cold"]["kernel_dirs"]
    assert found["files"] == captured["cold"]["scan"]["files"]
    # Triton's launcher directories (a compiled .so alone) are neither kernels nor half-written
    # ones: the H200 run counted them as incomplete (captured), scan now skips them.
    launchers = {f"{i:04d}KERNELDIRECTORYNAMEDBYHASH" for i, d in enumerate(shape) if all(n.endswith(".so") for n, _size in d["files"])}
    assert len(launchers) == captured["cold"]["launcher_dirs"] == len(captured["cold"]["scan"]["triton_incomplete"]) > 0
    assert found["triton"]["incomplete"] == []
    accepted, verdict = kc.judge(0, found, False)
    assert accepted and f"{captured['cold']['kernel_dirs']} Triton kernels" in verdict

    key = dict(captured["key"])
    marker = kc.write_marker(str(staging), key, found, {"compiled": {"rc": 0}})
    assert marker["kernels"]["triton"] == captured["cold"]["kernel_dirs"]
    assert len(marker["files"]) == found["files"]
    final = root / "cfg"
    kc.publish(str(staging), str(final))
    assert not staging.exists()
    assert kc.verify(str(final), key, full=True)["state"] == "complete"
    assert kc.verify(str(final), {**key, "gpu": "10.0"})["state"] == "stale"

    # A group file written again with other paths (what Triton did at a moved path): caught by size.
    group = next(final.glob("triton/*/__grp__*.json"))
    group.write_bytes(group.read_bytes() + b" ")
    assert kc.verify(str(final), key)["state"] == "incomplete"
    group.write_bytes(group.read_bytes()[:-1])
    # The same size with other bytes: only the sha256 check sees it.
    cubin = next(final.glob("triton/*/*.cubin"))
    cubin.write_bytes(b"\0" * cubin.stat().st_size)
    assert kc.verify(str(final), key, full=False)["state"] == "complete"
    assert kc.verify(str(final), key, full=True)["state"] == "incomplete"


def test_the_orchestration_with_the_fake_child(tmp_path: Path) -> None:
    """The whole script without a GPU: the relay on loopback, the mount link, the counters and the verdicts."""
    out = tmp_path / "dry.json"
    assert proof.main(["--dry-run", "--out", str(out), "--work", str(tmp_path / "work")]) == 0
    report = json.loads(out.read_text())
    n = len(proof.kernel_set())
    assert report["dry_run"] is True
    assert report["compiles"] == {"tray-a": n, "tray-b": 0, "tray-c": 0, "moved-path control": n}
    assert report["fanout"]["method"].startswith("relay")
    assert report["verify_states"] == {
        "tray-a": "complete",
        "tray-b": "complete",
        "tray-c": "complete",
        "tray-b-after-warm": "complete",
        "tray-c-after-warm": "complete",
        "stale-gpu": "stale",
        "damaged": "incomplete",
        "old-cache-vs-changed-config": "stale",
    }
    assert report["changed"]["run_on_scratch_copy_of_old_cache"]["compiles"] == 1
    assert report["decisions"] == {"before": "skip", "after_compile": "fanout", "after_fanout": "ready"}
    assert not (tmp_path / "work").exists()
    assert not os.path.islink(report["mount"]["path"])


def test_the_counter_sees_a_kernel_compiled_again_in_place(tmp_path: Path) -> None:
    cache = tmp_path / "triton"
    kernel = cache / "K1"
    kernel.mkdir(parents=True)
    for name in ("k.json", "k.cubin", "__grp__k.json"):
        (kernel / name).write_bytes(b"x" * 10)
    before = proof.snapshot(str(cache))
    assert proof.changes(before, proof.snapshot(str(cache)))["compiles"] == 0
    # Written again through a rename, same bytes: a compile all the same.
    partial = kernel / "k.cubin.tmp"
    partial.write_bytes(b"x" * 10)
    os.replace(partial, kernel / "k.cubin")
    delta = proof.changes(before, proof.snapshot(str(cache)))
    assert delta["compiles"] == delta["kernel_dirs_rewritten"] == 1 and delta["files_changed"] == 0 and delta["new_dirs"] == 0
