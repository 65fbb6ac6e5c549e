"""The staging of the serving image and the kernel caches: the plan's key, the decisions, the tray-side modules."""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from ansible_module import run_module, run_module_file

from ansible_collections.wideep.gb200.plugins.module_utils import _kernel_cache as kc
from ansible_collections.wideep.gb200.plugins.plugin_utils.engine.contract import load_contract
from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.build import build_plan
from ansible_collections.wideep.gb200.plugins.plugin_utils.stage import kernel_cache as stage_kc
from ansible_collections.wideep.gb200.plugins.plugin_utils.stage import serving_image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from inventory_builder import build, set_var


def plan_for(recipe: str = "dsr1-fp8", **extra: Any) -> dict[str, Any]:
    groups, hostvars = build(prefill=(2, 2), decode=(2,), gb200_recipe=recipe, **extra)
    return dict(build_plan(groups, hostvars))


def caches(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["name"]: w["kernel_cache"] for w in plan["workers"]}


# ---------------------------------------------------------------- the plan's half of the key


def test_workers_with_the_same_flags_share_one_configuration_and_roles_differ() -> None:
    c = caches(plan_for())
    assert c["prefill_0"]["config"] == c["prefill_1"]["config"]
    assert c["decode_0"]["config"] != c["prefill_0"]["config"]
    assert c["prefill_0"]["dir"] == f"/var/lib/wideep/kernel-cache/{c['prefill_0']['config']}"


def test_a_kernel_shaping_flag_changes_only_its_configuration() -> None:
    groups, hostvars = build(prefill=(2,), decode=(2,), gb200_recipe="dsr1-fp8")
    before = caches(dict(build_plan(groups, hostvars)))
    set_var(hostvars, groups["decode_0"], "gb200_decode_args", {"cuda-graph-max-bs-decode": 128})
    after = caches(dict(build_plan(groups, hostvars)))
    assert after["decode_0"]["config"] != before["decode_0"]["config"]
    assert after["prefill_0"]["config"] == before["prefill_0"]["config"]


def test_identity_flags_and_addresses_do_not_change_the_configuration() -> None:
    a = caches(plan_for(subnet="10.1"))
    groups, hostvars = build(prefill=(2, 2), decode=(2,), subnet="10.9", gb200_recipe="dsr1-fp8")
    b = caches(dict(build_plan(groups, hostvars)))
    assert {k: v["config"] for k, v in a.items()} == {k: v["config"] for k, v in b.items()}
    flags = dict(a["decode_0"]["material"]["flags"])
    assert "dist-init-addr" not in flags and "node-rank" not in flags and "cuda-graph-max-bs-decode" in flags


def test_the_image_and_the_cache_root_are_part_of_the_plan() -> None:
    a = caches(plan_for(gb200_image="example/sglang@sha256:" + "1" * 64))
    b = caches(plan_for(gb200_image="example/sglang@sha256:" + "2" * 64, gb200_kernel_cache_dir="/srv/kc"))
    assert a["decode_0"]["config"] != b["decode_0"]["config"]
    assert b["decode_0"]["dir"].startswith("/srv/kc/")


@pytest.mark.parametrize(
    ("recipe", "variable", "deep_gemm"),
    [
        ("dsr1-fp8", "SGLANG_DG_CACHE_DIR", True),  # SGLang 0.5.21 reads SGLANG_DG_CACHE_DIR
        ("dsr1-fp8-wideep", "SGL_DG_CACHE_DIR", True),  # 0.5.3.post2 reads only SGL_DG_CACHE_DIR
        ("dsr1-nvfp4", None, False),  # no DeepGEMM on the NVFP4 path
    ],
)
def test_the_cache_env_is_spelled_as_the_pinned_engine_reads_it(recipe: str, variable: str | None, deep_gemm: bool) -> None:
    plan = plan_for(recipe)
    cache = caches(plan)["decode_0"]
    assert cache["deep_gemm"] is deep_gemm
    dg = {k for k in cache["env"] if "DG_CACHE_DIR" in k}
    assert dg == ({variable} if variable else set())
    assert cache["env"]["TRITON_CACHE_DIR"] == "/wideep/kernel-cache/triton"
    versions = plan["engine_versions"]
    contract = load_contract(versions["dynamo"], versions["sglang"])
    assert contract is not None
    assert all(contract.reads(k) or not k.startswith("SGL") for k in cache["env"])
    # Every worker container mounts its configuration's directory and gets the env.
    for host in plan["workers"][-1]["hosts"]:
        spec = next(c for c in plan["hosts"][host]["containers"] if c["kind"] == "worker")
        assert cache["mount"] in spec["volumes"]
        assert {k: spec["env"][k] for k in cache["env"]} == cache["env"]


def test_the_compile_takes_the_sglang_flags_with_each_rank() -> None:
    plan = plan_for()
    cache = caches(plan)["decode_0"]
    contract = load_contract(plan["engine_versions"]["dynamo"], plan["engine_versions"]["sglang"])
    assert contract is not None
    for rank, argv in cache["compile_argv"].items():
        assert argv[argv.index("--node-rank") + 1] == rank
        flags = [a for a in argv if a.startswith("--")]
        assert all(contract.options[f].owner.startswith("SGLang") for f in flags), flags


# ---------------------------------------------------------------- the role's decisions


def test_decisions_compile_once_fan_out_skip_or_nothing() -> None:
    plan = plan_for()
    configs = stage_kc.configurations(plan)
    assert [len(c["workers"]) for c in configs] == [2, 1]
    prefill, decode = configs
    assert prefill["compile_hosts"] == ["p0-0", "p0-1"] and prefill["trays"] == ["p0-0", "p0-1", "p1-0", "p1-1"]
    complete = {"state": "complete"}
    held = {"p1-1": {prefill["config"]: complete}, "d0-0": {decode["config"]: complete}, "d0-1": {decode["config"]: complete}}
    first, second = stage_kc.decide(configs, held)
    assert (first["action"], first["source"], first["lacking"]) == ("fanout", "p1-1", ["p0-0", "p0-1", "p1-0"])
    assert second["action"] == "ready"
    cold = stage_kc.decide(configs, {})
    assert [d["action"] for d in cold] == ["compile", "compile"]
    assert cold[0]["source"] == "p0-0"
    nvfp4 = stage_kc.decide(stage_kc.configurations(plan_for("dsr1-nvfp4")), {})
    assert [d["action"] for d in nvfp4] == ["skip", "skip"]
    assert "no DeepGEMM" in nvfp4[0]["why"]


def test_the_compile_runs_the_workers_container_in_the_foreground_on_the_staging_directory() -> None:
    plan = plan_for()
    config = stage_kc.configurations(plan)[1]
    job = stage_kc.compile_argv(plan, config, "d0-1", "/var/lib/wideep/kernel-cache", ["python3", "-m", "sglang.compile_deep_gemm"], {"X": "1"})
    argv = job["docker_argv"]
    assert argv[:2] == ["docker", "run"] and "--rm" in argv and "--detach" not in argv and "--restart" not in argv
    assert f"/var/lib/wideep/kernel-cache/.staging/{config['config']}:/wideep/kernel-cache:rw" in argv
    assert not any(v.startswith(config["dir"] + ":") for v in argv)
    i = argv.index("sglang.compile_deep_gemm")
    assert argv[i + 1 :] == config["compile_argv"]["1"]
    assert "X=1" in argv and "--env-file" not in argv


def test_key_and_gpus() -> None:
    plan = plan_for()
    config = stage_kc.configurations(plan)[0]
    # host_info's compute_capabilities (what the role reads), and gpu_info's result as the H200
    # returned it (tests/unit/fixtures/gpu_info-h200.json): gpus[].compute_capability.
    assert stage_kc.gpu_of({"compute_capabilities": {f"GPU-{i}": "10.0" for i in range(4)}, "images": []}) == "10.0"
    assert stage_kc.gpu_of({"compute_capabilities": {"GPU-0": "10.0", "GPU-1": "9.0"}}) == "10.0+9.0"
    assert stage_kc.gpu_of(json.loads((Path(__file__).parent / "fixtures" / "gpu_info-h200.json").read_text())) == "9.0"
    assert stage_kc.gpu_of({"compute_capabilities": {}}) == stage_kc.gpu_of({"gpus": []}) == "none"
    key = stage_kc.key_of(config, plan, "sha256:abc", "10.0")
    assert key == {"config": config["config"], "image": plan["image"], "image_id": "sha256:abc", "gpu": "10.0", "sglang": "0.5.21", "dynamo": "1.6.1"}


# ---------------------------------------------------------------- the cache on a tray


def write_kernels(root: Path, n: int = 3, half: int = 0, triton: int = 2) -> None:
    for i in range(n + half):
        kernel = root / "deep_gemm" / "cache" / f"kernel.gemm_{i}.{i:032x}"
        kernel.mkdir(parents=True)
        (kernel / "kernel.cu").write_text("// source\n")
        if i < n:
            (kernel / "kernel.cubin").write_bytes(b"\x7fELF" + bytes(64))
    for i in range(triton):
        kernel = root / "triton" / f"{i:064x}"
        kernel.mkdir(parents=True)
        (kernel / "k.json").write_text("{}")
        (kernel / "k.cubin").write_bytes(b"\x7fELF" + bytes(32))


def test_judged_by_content_not_by_exit_code(tmp_path: Path) -> None:
    write_kernels(tmp_path / "ok")
    write_kernels(tmp_path / "half", n=2, half=1)
    (tmp_path / "empty").mkdir()
    ok, half, empty = (kc.scan(str(tmp_path / d)) for d in ("ok", "half", "empty"))
    assert (ok["deep_gemm"]["complete"], ok["triton"]["complete"]) == (3, 2)
    assert kc.judge(0, ok, True) == (True, "3 DeepGEMM and 2 Triton kernels cached")
    accepted, verdict = kc.judge(1, ok, True)
    assert accepted and "accepted by content" in verdict
    assert kc.judge(1, empty, True)[0] is False
    assert kc.judge(0, empty, True) == (False, "exit code 0 and no DeepGEMM kernel in the cache")
    assert kc.judge(0, half, True)[0] is False and "half written" in kc.judge(0, half, True)[1]
    assert kc.judge(None, ok, True) == (False, "timed out")
    assert kc.judge(0, empty, False)[0] is True  # a path without DeepGEMM needs none


def test_the_marker_verifies_the_key_and_the_files(tmp_path: Path) -> None:
    root = tmp_path / "c"
    write_kernels(root)
    key = {"config": "c", "image_id": "sha256:1", "gpu": "10.0"}
    assert kc.verify(str(root), key)["state"] == "absent"
    kc.write_marker(str(root), key, kc.scan(str(root)), {})
    assert kc.verify(str(root), key) == {"state": "complete", "why": "", "kernels": {"deep_gemm": 3, "triton": 2, "other_files": 0}}
    stale = kc.verify(str(root), {**key, "image_id": "sha256:2"})
    assert stale["state"] == "stale" and "image_id" in stale["why"]
    cubin = next((root / "deep_gemm" / "cache").iterdir()) / "kernel.cubin"
    cubin.write_bytes(b"\x7fELF" + bytes(65))  # same path, other size
    assert kc.verify(str(root), key)["state"] == "incomplete"
    cubin.write_bytes(b"\x7fELF" + bytes(63) + b"x")  # same size, other bytes: only a full verify sees it
    assert kc.verify(str(root), key)["state"] == "complete"
    assert kc.verify(str(root), key, full=True)["state"] == "incomplete"


COMPILER = r"""
import os, sys, time
root = sys.argv[1]
mode = sys.argv[2]
if mode == "sleep":
    time.sleep(30)
if mode in ("ok", "bootstrap"):
    for i in range(2):
        d = os.path.join(root, "deep_gemm", "cache", f"kernel.g{i}.{i:032x}")
        os.makedirs(d)
        open(os.path.join(d, "kernel.cu"), "w").write("x")
        open(os.path.join(d, "kernel.cubin"), "wb").write(b"\x7fELF" * 4)
print("line one"); print("the last line of the compile")
sys.exit(0 if mode == "ok" else 1)
"""


def compile_args(tmp_path: Path, mode: str, timeout: int = 60) -> str:
    script = tmp_path / "compiler.py"
    script.write_text(COMPILER)
    root = tmp_path / "root"
    staging = root / ".staging" / "cfg1"
    args = {
        "root": str(root),
        "config": "cfg1",
        "key": {"config": "cfg1", "image_id": "sha256:1", "gpu": "none"},
        "docker_argv": [sys.executable, str(script), str(staging), mode],
        "container_name": "wideep-test-no-such-container",
        "timeout": timeout,
        "progress_path": str(root / ".staging" / "cfg1.progress.json"),
    }
    return json.dumps(args)


def test_compile_module_publishes_an_accepted_cache_with_its_marker(tmp_path: Path) -> None:
    rc, result, out = run_module("kernel_cache_compile", compile_args(tmp_path, "bootstrap"))
    assert rc == 0, out
    assert result["accepted"] and "accepted by content" in result["verdict"] and result["exit_code"] == 1
    root = tmp_path / "root"
    assert kc.verify(str(root / "cfg1"), {"config": "cfg1", "image_id": "sha256:1", "gpu": "none"})["state"] == "complete"
    assert not (root / ".staging" / "cfg1").exists()
    log = [json.loads(line) for line in (root / kc.COMPILE_LOG).read_text().splitlines()]
    assert [(e["config"], e["accepted"]) for e in log] == [("cfg1", True)]
    # Check mode compiles nothing.
    rc, result, out = run_module("kernel_cache_compile", compile_args(tmp_path, "ok"), "--check")
    assert rc == 0 and result["changed"] and len((root / kc.COMPILE_LOG).read_text().splitlines()) == 1


def test_compile_module_refuses_a_failed_compile_with_its_log_tail_and_keeps_the_old_cache(tmp_path: Path) -> None:
    assert run_module("kernel_cache_compile", compile_args(tmp_path, "ok"))[0] == 0
    published = tmp_path / "root" / "cfg1" / kc.MARKER
    before = published.read_bytes()
    rc, result, _output = run_module("kernel_cache_compile", compile_args(tmp_path, "error"))
    assert rc != 0
    assert "the last line of the compile" in result["msg"] and "no DeepGEMM kernel" in result["msg"]
    assert published.read_bytes() == before
    rc, result, _output = run_module("kernel_cache_compile", compile_args(tmp_path, "sleep", timeout=2))
    assert rc != 0 and "timed out after 2 s" in result["msg"]


def test_kernel_cache_info_reads_only(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_kernels(root / "cfg1")
    key = {"config": "cfg1", "image_id": "sha256:1", "gpu": "none"}
    kc.write_marker(str(root / "cfg1"), key, kc.scan(str(root / "cfg1")), {})
    kc.log_run(str(root), {"config": "cfg1"})
    snapshot = sorted((str(p), p.stat().st_mtime_ns) for p in root.rglob("*"))
    args = json.dumps({"root": str(root), "configs": [{"config": "cfg1", "key": key}, {"config": "cfg2", "key": key}]})
    rc, result, out = run_module("kernel_cache_info", args)
    assert rc == 0, out
    assert not result["changed"]
    assert result["caches"]["cfg1"]["state"] == "complete" and result["caches"]["cfg2"]["state"] == "absent"
    assert result["compiles"] == {"cfg1": 1}
    assert sorted((str(p), p.stat().st_mtime_ns) for p in root.rglob("*")) == snapshot


def test_kernel_cache_info_action_answers_as_the_module_does(tmp_path: Path) -> None:
    """The action judges a shell read of each configuration's marker and file sizes with the
    module's code: the same answer as the module (run as Ansible runs a module file) on complete,
    stale, incomplete (a file missing, another size), absent and odd-named caches; a full verify
    (hashes) goes to the module."""
    root = tmp_path / "root"
    key = {"config": "c", "image_id": "sha256:1", "gpu": "10.0", "sglang": "0.5.21"}
    for name in ("complete", "stale", "missing", "resized", "odd"):
        write_kernels(root / name)
    (root / "odd" / "a dir with spaces").mkdir()
    (root / "odd" / "a dir with spaces" / "k 'q'.cubin").write_bytes(b"x" * 7)
    (root / "odd" / "linked.cubin").symlink_to(root / "odd" / "a dir with spaces" / "k 'q'.cubin")
    for name in ("complete", "missing", "resized", "odd"):
        kc.write_marker(str(root / name), key, kc.scan(str(root / name)), {})
    kc.write_marker(str(root / "stale"), {**key, "gpu": "9.0"}, kc.scan(str(root / "stale")), {})
    next((root / "missing" / "triton").rglob("k.cubin")).unlink()
    next((root / "resized" / "triton").rglob("k.cubin")).write_bytes(b"\x7fELF")
    kc.log_run(str(root), {"config": "complete"})
    kc.log_run(str(root), {"config": "complete"})
    with open(root / kc.COMPILE_LOG, "a", encoding="utf-8") as log:
        log.write("not json\n")
    names = ["complete", "stale", "missing", "resized", "odd", "absent"]
    args = {"root": str(root) + "/", "configs": [{"config": n, "key": key} for n in names]}
    rc, action, out = run_module("kernel_cache_info", json.dumps(args))
    assert rc == 0 and "invocation" not in action, out  # the shell read answered
    module = run_module_file("kernel_cache_info", args, tmp_path)
    assert action["caches"] == module["caches"] and action["compiles"] == module["compiles"] == {"complete": 2}
    assert [action["caches"][n]["state"] for n in names] == ["complete", "stale", "incomplete", "incomplete", "complete", "absent"]
    assert "is missing" in action["caches"]["missing"]["why"] and "bytes" in action["caches"]["resized"]["why"]
    rc, full, out = run_module("kernel_cache_info", json.dumps({**args, "full_verify": True}))
    assert rc == 0 and "invocation" in full and full["caches"] == module["caches"], out


# ---------------------------------------------------------------- the serving image


def test_image_source_problems_all_at_once() -> None:
    trays = ["t0", "t1"]
    assert serving_image.source_problems({}, "img:1", trays) == []
    assert serving_image.source_problems({"type": "host", "host": "t0"}, "img:1", trays) == []
    problems = serving_image.source_problems({"type": "build", "host": "t9", "path": "rel", "args": [1], "colour": 1}, "img:1", trays)
    assert len(problems) == 4, problems
    assert any("'colour'" in p for p in problems) and any("t9" in p for p in problems)
    pull = serving_image.source_problems({"type": "pull", "host": "t0"}, "img:latest", trays)
    assert len(pull) == 1 and "digest" in pull[0]
    assert serving_image.source_problems({"type": "archive", "host": "localhost", "path": "/srv/images"}, "img:1", trays) == []
    assert "type" in serving_image.source_problems({"type": "rsync"}, "img:1", trays)[0]


def info(image_id: str | None) -> dict[str, Any]:
    return {"images": [{"Id": image_id}] if image_id else []}


def test_image_distribution_sends_to_the_trays_whose_id_differs() -> None:
    ids = serving_image.image_ids({"t0": info("sha256:a"), "t1": info(None), "t2": info("sha256:b"), "t3": info("sha256:a")})
    assert serving_image.distribution(ids, "t0", "img") == {"source_id": "sha256:a", "receivers": ["t1", "t2"], "problems": []}
    none = serving_image.distribution(ids, None, "img")
    assert len(none["problems"]) == 2 and "t1" in none["problems"][0] and "different images" in none["problems"][1]
    assert serving_image.distribution({"t0": "sha256:a", "t1": "sha256:a"}, None, "img")["problems"] == []
    assert serving_image.loaded_problems({"t0": info("sha256:a"), "t1": info("sha256:b")}, "sha256:a", "img") == [
        "host t1: holds image b under img after the transfer, not a: the archive was verified by sha256, so the tray's Docker "
        "loaded something else (check its disk and daemon)"
    ]


def test_archive_info_reads_the_image_id_from_a_docker_save_archive(tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "image.tar", "w") as archive:
        data = json.dumps([{"Config": "blobs/sha256/" + "c" * 64, "RepoTags": ["img:1"], "Layers": []}]).encode()
        member = tarfile.TarInfo("manifest.json")
        member.size = len(data)
        archive.addfile(member, io.BytesIO(data))
    assert serving_image.archive_info(str(tmp_path)) == ("sha256:" + "c" * 64, "image.tar")
    (tmp_path / "other.tar").write_bytes(b"")
    with pytest.raises(ValueError, match="exactly one"):
        serving_image.archive_info(str(tmp_path))


def test_image_content_is_checked_not_assumed() -> None:
    found = {"libmlx5": "/usr/lib/x86_64-linux-gnu/libmlx5.so", "gdrapi": None, "versions": {"sglang": "0.5.21", "ai-dynamo": "1.6.1"}}
    engine = {"sglang": "0.5.21", "dynamo": "1.6.1"}
    everything = {"libmlx5": True, "gdrcopy": True, "engine": True}
    problems = serving_image.content_problems(json.dumps(found), "img", everything, engine)
    assert len(problems) == 1 and "gdrcopy" in problems[0]
    assert serving_image.content_problems(json.dumps(found), "img", {**everything, "gdrcopy": False}, engine) == []
    old = {**found, "libmlx5": None, "versions": {"sglang": "0.5.9", "ai-dynamo": "1.0.2"}}
    problems = serving_image.content_problems(json.dumps(old), "img", {**everything, "gdrcopy": False}, engine)
    assert len(problems) == 2 and "libmlx5" in problems[0] and "0.5.9" in problems[1]
    assert "readable" in serving_image.content_problems("", "img", everything, engine)[0]


def test_the_image_probe_runs_on_a_plain_python() -> None:
    import subprocess

    probe = Path(__file__).resolve().parents[2] / "roles" / "serving_image" / "files" / "image_probe.py"
    out = subprocess.run([sys.executable, "-"], input=probe.read_text(), capture_output=True, text=True, check=True, env=dict(os.environ)).stdout
    data = json.loads(out.strip().splitlines()[-1])
    assert set(data) == {"libmlx5", "gdrapi", "versions"}
    assert set(data["versions"]) == {"sglang", "ai-dynamo", "ai-dynamo-runtime"}
