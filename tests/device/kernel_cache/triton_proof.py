# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The kernel-cache mechanism on a real GPU host, with Triton's JIT cache (TRITON_CACHE_DIR).

Run from the repository root:  python3 tests/device/kernel_cache/triton_proof.py --out OUT.json

One process drives child processes (triton_kernels.py) and does the collection's bookkeeping with
the collection's own code, loaded by file path (no Ansible needed):
  key      the plan half: plan/kernel_cache.py's config_digest over what shapes the kernels (the
           kernel set: kernels, block sizes, dtypes, warps, stages, shapes, and the kernels' source);
           the tray half: the image (here torch+triton versions) and the GPU's compute capability;
           the fields of stage/kernel_cache.py's key_of
  cold     tray-a compiles into ROOT/.staging/<config>/triton, then scan, judge, write_marker,
           publish, log_run: the steps of plugins/modules/kernel_cache_compile.py
  fan-out  tray-a -> tray-b -> tray-c through the collection's relay (_relay.Relay over loopback,
           a manifest from _weights.make_manifest, as model_weights_relay drives it), then verify
           (sha256 of every file) on each tray
  warm     a child on tray-b and one on tray-c: the same kernels from the copy; new kernel
           directories (compiles) and changed files are counted
  changed  one kernel with another block size: a new configuration digest; the old cache is stale
           for its key; run against a scratch copy of the old cache, Triton compiles that kernel only
  stale    the cache verified against a key with another GPU: 'stale'; a truncated file: 'incomplete'
  decide   stage/kernel_cache.py's decide() on what the trays hold before, after the compile and
           after the fan-out

--dry-run uses the FAKE CHILD of triton_kernels.py (no GPU, no torch): the orchestration and the
bookkeeping run for real on a Triton-shaped tree; the timings mean nothing.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import hashlib
import importlib
import importlib.util
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import threading
import time
import types
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
CHILD = os.path.join(HERE, "triton_kernels.py")
MODULE_UTILS = os.path.join(REPO, "plugins", "module_utils")
PLUGIN_UTILS = os.path.join(REPO, "plugins", "plugin_utils")


# ---- the collection's code, by file path ------------------------------------------------------
def _package(name: str, path: str) -> types.ModuleType:
    """A package object for a directory, so that its modules' relative imports resolve."""
    if name in sys.modules:
        return sys.modules[name]
    package = types.ModuleType(name)
    package.__path__ = [path]  # type: ignore[attr-defined]
    sys.modules[name] = package
    return package


def load_collection() -> dict[str, Any]:
    _package("wideep_proof_module_utils", MODULE_UTILS)
    _package("wideep_proof_plugin_utils", PLUGIN_UTILS)
    return {
        "kc": importlib.import_module("wideep_proof_module_utils._kernel_cache"),
        "relay": importlib.import_module("wideep_proof_module_utils._relay"),
        "weights": importlib.import_module("wideep_proof_module_utils._weights"),
        "plan_kc": importlib.import_module("wideep_proof_plugin_utils.plan.kernel_cache"),
        "stage_kc": importlib.import_module("wideep_proof_plugin_utils.stage.kernel_cache"),
    }


# ---- the kernel set ---------------------------------------------------------------------------
def kernel_set() -> list[dict[str, Any]]:
    """20 kernels: 8 matmuls, 5 softmaxes, 4 layer norms, 3 add+GELU; one compile each."""
    specs: list[dict[str, Any]] = []
    for dtype, bm, bn, bk, warps, stages in [
        ("float16", 128, 128, 64, 8, 3),
        ("float16", 128, 64, 64, 4, 4),
        ("float16", 64, 128, 32, 4, 4),
        ("float16", 64, 64, 32, 4, 4),
        ("float16", 128, 256, 64, 8, 3),
        ("bfloat16", 128, 128, 64, 8, 3),
        ("bfloat16", 64, 64, 64, 4, 3),
        ("bfloat16", 128, 64, 32, 4, 4),
    ]:
        specs.append(
            {
                "kernel": "matmul",
                "dtype": dtype,
                "BLOCK_M": bm,
                "BLOCK_N": bn,
                "BLOCK_K": bk,
                "num_warps": warps,
                "num_stages": stages,
                "shape": [1024, 1024, 1024],
            }
        )
    for dtype, block, warps in [("float32", 1024, 4), ("float16", 2048, 8), ("float32", 4096, 8), ("bfloat16", 4096, 16), ("float16", 8192, 16)]:
        specs.append({"kernel": "softmax", "dtype": dtype, "BLOCK": block, "num_warps": warps, "shape": [2048, block - 24]})
    for dtype, block, warps in [("float16", 1024, 4), ("bfloat16", 2048, 8), ("float32", 4096, 8), ("float16", 8192, 16)]:
        specs.append({"kernel": "layernorm", "dtype": dtype, "BLOCK": block, "num_warps": warps, "shape": [2048, block - 40]})
    for dtype, block, warps in [("float16", 512, 4), ("bfloat16", 1024, 4), ("float32", 2048, 8)]:
        specs.append({"kernel": "add_gelu", "dtype": dtype, "BLOCK": block, "num_warps": warps, "shape": [1 << 22]})
    for spec in specs:
        spec["id"] = spec_id(spec)
    return specs


def spec_id(spec: dict[str, Any]) -> str:
    if spec["kernel"] == "matmul":
        blocks = f"{spec['BLOCK_M']}x{spec['BLOCK_N']}x{spec['BLOCK_K']}"
    else:
        blocks = str(spec["BLOCK"])
    return f"{spec['kernel']}-{spec['dtype']}-{blocks}-w{spec['num_warps']}" + (f"s{spec['num_stages']}" if "num_stages" in spec else "")


def changed_kernel_set(specs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str, str]:
    """The same set with one kernel's block size changed (the fp16 64x64x32 matmul gets BLOCK_K 64)."""
    out = copy.deepcopy(specs)
    for spec in out:
        if spec["kernel"] == "matmul" and spec["dtype"] == "float16" and (spec["BLOCK_M"], spec["BLOCK_N"], spec["BLOCK_K"]) == (64, 64, 32):
            before = spec["id"]
            spec["BLOCK_K"] = 64
            spec["id"] = spec_id(spec)
            return out, before, spec["id"]
    raise AssertionError("the kernel set lost its 64x64x32 fp16 matmul")


def config_material(specs: list[dict[str, Any]]) -> dict[str, Any]:
    with open(CHILD, "rb") as handle:
        source = hashlib.sha256(handle.read()).hexdigest()
    return {"what": "wideep.gb200 Triton kernel-cache proof", "kernels": specs, "kernels_source_sha256": source}


# ---- the cache as Triton leaves it ------------------------------------------------------------
def snapshot(triton_dir: str) -> dict[str, Any]:
    """{dirs: [...], files: {rel: [size, sha256, inode, mtime_ns]}} of a Triton cache directory (its .wideep state left out)."""
    dirs: list[str] = []
    files: dict[str, list[Any]] = {}
    if os.path.isdir(triton_dir):
        for name in sorted(os.listdir(triton_dir)):
            full = os.path.join(triton_dir, name)
            if name.startswith(".wideep") or not os.path.isdir(full):
                continue
            dirs.append(name)
            for entry in sorted(os.listdir(full)):
                path = os.path.join(full, entry)
                if os.path.isfile(path):
                    info = os.stat(path)
                    with open(path, "rb") as handle:
                        files[f"{name}/{entry}"] = [info.st_size, hashlib.sha256(handle.read()).hexdigest(), info.st_ino, info.st_mtime_ns]
    return {"dirs": dirs, "files": files}


def is_kernel_dir(names: list[str]) -> bool:
    """A compiled kernel's directory: its metadata and a non-empty binary (what _kernel_cache.scan counts)."""
    return any(n.endswith(".json") and not n.startswith("__grp__") for n in names) and any(n.endswith(".cubin") for n in names)


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What a child wrote into a cache.

    compiles: kernel directories that are new, or whose files were written again (Triton replaces a
    file through a rename: a new inode). A new directory alone is not enough: Triton 3.6 compiles a
    kernel again INTO ITS EXISTING DIRECTORY when the group file's absolute paths do not resolve.
    files_changed: files whose content differs; files_rewritten: files written again (same content
    or not)."""
    new_dirs = [d for d in after["dirs"] if d not in set(before["dirs"])]
    listing = layout_of(after)
    new_kernels = [d for d in new_dirs if is_kernel_dir(listing.get(d, []))]
    added = [f for f in after["files"] if f not in before["files"]]
    removed = [f for f in before["files"] if f not in after["files"]]
    changed = [f for f in after["files"] if f in before["files"] and after["files"][f][:2] != before["files"][f][:2]]
    rewritten = [f for f in after["files"] if f in before["files"] and after["files"][f][2:] != before["files"][f][2:]]
    recompiled = sorted({f.split("/", 1)[0] for f in rewritten} & {d for d, names in listing.items() if is_kernel_dir(names)})
    return {
        "compiles": len(new_kernels) + len(recompiled),
        "new_dirs": len(new_dirs),
        "new_kernel_dirs": len(new_kernels),
        "new_other_dirs": len(new_dirs) - len(new_kernels),
        "kernel_dirs_rewritten": len(recompiled),
        "files_added": len(added),
        "files_changed": len(changed),
        "files_rewritten": len(rewritten),
        "files_removed": len(removed),
        "changed_examples": sorted({f.split("/", 1)[1] for f in changed})[:5],
        "new_dir_listing": {d: listing.get(d, []) for d in new_dirs},
    }


def layout_of(snap: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {d: [] for d in snap["dirs"]}
    for rel in snap["files"]:
        directory, name = rel.split("/", 1)
        out.setdefault(directory, []).append(name)
    return {d: sorted(names) for d, names in out.items()}


def shape_of(snap: dict[str, Any]) -> list[dict[str, Any]]:
    """The cache's shape without its hashes: each directory's file names (suffixes kept) and sizes, for the fixture."""
    out = []
    for directory, names in sorted(layout_of(snap).items()):
        out.append({"files": [[n, snap["files"][f"{directory}/{n}"][0]] for n in names]})
    return out


# ---- children ---------------------------------------------------------------------------------
def run_child(
    args: argparse.Namespace, *, cache_dir: str | None, specs: list[dict[str, Any]] | None, work: str, tag: str, log_path: str | None = None
) -> dict[str, Any]:
    """Run triton_kernels.py once; {rc, seconds, report, log_tail}. seconds is the child's wall time, process start to exit."""
    report_path = os.path.join(work, f"child-{tag}.json")
    argv = [sys.executable, CHILD, "--report", report_path]
    if specs is None:
        argv.append("--info")
    else:
        spec_path = os.path.join(work, f"spec-{tag}.json")
        with open(spec_path, "w", encoding="utf-8") as handle:
            json.dump(specs, handle, indent=1)
        argv += ["--spec", spec_path]
    if args.dry_run:
        argv.append("--fake")
    env = dict(os.environ)
    if cache_dir is not None:
        env["TRITON_CACHE_DIR"] = cache_dir
    else:
        env.pop("TRITON_CACHE_DIR", None)
    log_path = log_path or os.path.join(work, f"child-{tag}.log")
    started = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=work)
        try:
            rc: int | None = proc.wait(timeout=args.child_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = None
    seconds = time.monotonic() - started
    try:
        with open(report_path, encoding="utf-8") as handle:
            report = json.load(handle)
    except (OSError, ValueError):
        report = None
    with open(log_path, encoding="utf-8", errors="replace") as handle:
        tail = [line.rstrip("\n") for line in handle.readlines()[-20:]]
    return {"rc": rc, "seconds": round(seconds, 3), "report": report, "log_tail": tail}


def child_summary(child: dict[str, Any]) -> dict[str, Any]:
    report = child["report"] or {}
    results = report.get("results", [])
    return {
        "rc": child["rc"],
        "seconds": child["seconds"],
        "import_seconds": report.get("import_seconds"),
        "kernels_seconds": report.get("kernels_seconds"),
        "kernels_run": len(results),
        "kernels_ok": sum(1 for r in results if r.get("ok")),
        "failed": [r for r in results if not r.get("ok")],
        "log_tail": child["log_tail"] if child["rc"] != 0 or not report.get("all_ok", False) else [],
    }


# ---- fan-out ------------------------------------------------------------------------------------
def free_port_block(count: int) -> int:
    """A base port below Linux's ephemeral range with count + 1 free ports above it."""
    for base in range(21000 + os.getpid() % 500 * 16, 32000, 16):
        ok = True
        for port in range(base + 1, base + count + 1):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free loopback ports")


def relay_fanout(col: dict[str, Any], source_dir: str, dests: list[str]) -> dict[str, Any]:
    """source_dir -> dests[0] -> dests[1] ... through _relay.Relay on loopback, one thread per member."""
    weights, relay_mod = col["weights"], col["relay"]
    manifest = weights.make_manifest(source_dir)["files"]
    entries = weights.parse_manifest({"files": manifest})
    starts = {e.path: 0 for e in entries}
    segments = weights.layout(entries, starts)
    base = free_port_block(len(dests))
    chain = [("127.0.0.1", 0)] + [("127.0.0.1", base + i) for i in range(1, len(dests) + 1)]
    run_id = hashlib.sha256(f"{source_dir}{time.time()}".encode()).hexdigest()[:12]
    needs = {e.path for e in entries}
    results: dict[int, dict[str, Any]] = {}

    def member(index: int, **kwargs: Any) -> None:
        relay = relay_mod.Relay(
            run_id=run_id, index=index, chain=chain, segments=segments, stall_timeout=20, connect_timeout=30, idle_timeout=60, listen_host="127.0.0.1", **kwargs
        )
        try:
            results[index] = relay.run()
        except Exception as exc:  # reported
            results[index] = {**relay.result(), "error": f"{type(exc).__name__}: {exc}"}

    started = time.monotonic()
    threads = []
    for i, dest in enumerate(dests, start=1):
        os.makedirs(dest, exist_ok=True)
        thread = threading.Thread(target=member, args=(i,), kwargs={"needs": needs, "dest": dest}, daemon=True)
        thread.start()
        threads.append(thread)
    member(0, needs=set(), dest=None, source_dir=source_dir)
    for thread in threads:
        thread.join(timeout=120)
    seconds = time.monotonic() - started
    return {
        "method": "relay (plugins/module_utils/_relay.py Relay, pipelined chain over 127.0.0.1, manifest from _weights.make_manifest)",
        "files": len(entries),
        "bytes": sum(e.size for e in entries),
        "seconds": round(seconds, 3),
        "members": {
            str(i): {k: results.get(i, {}).get(k) for k in ("state", "bytes_received", "bytes_sent", "failed", "bypassed", "error")}
            for i in range(len(dests) + 1)
        },
        "published": {dests[i - 1]: len(results.get(i, {}).get("published", [])) for i in range(1, len(dests) + 1)},
    }


def copy_fanout(source_dir: str, dests: list[str]) -> dict[str, Any]:
    """The fallback: a copy of every file, each checked against the source's sha256."""
    started = time.monotonic()
    files = 0
    for dest in dests:
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(source_dir, dest)
        for dirpath, _dirs, names in os.walk(source_dir):
            for name in names:
                rel = os.path.relpath(os.path.join(dirpath, name), source_dir)
                with open(os.path.join(source_dir, rel), "rb") as a, open(os.path.join(dest, rel), "rb") as b:
                    if hashlib.sha256(a.read()).digest() != hashlib.sha256(b.read()).digest():
                        raise RuntimeError(f"copy of {rel} to {dest} does not match")
                files += 1
    return {"method": "sha256-verified copy (shutil.copytree; the relay failed)", "files": files, "seconds": round(time.monotonic() - started, 3)}


# ---- the container's mount point ------------------------------------------------------------------
def point_mount(mount: str, target: str) -> None:
    """Make the fixed path `mount` lead to `target`, as a worker's container sees its tray's cache
    at /wideep/kernel-cache (plan/kernel_cache.py CONTAINER_DIR) whatever the host path: a symbolic
    link here (no Docker on the device host). Refuses to replace anything but a link."""
    if os.path.islink(mount):
        os.unlink(mount)
    elif os.path.exists(mount):
        raise RuntimeError(f"{mount} exists and is not a link: not replacing it")
    os.makedirs(os.path.dirname(mount), exist_ok=True)
    os.symlink(target, mount)


# ---- the proof --------------------------------------------------------------------------------
def nvidia_smi() -> dict[str, Any]:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,compute_cap,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": str(exc)}
    if out.returncode != 0:
        return {"error": out.stderr.strip()[-500:]}
    name, cap, driver, memory = (part.strip() for part in out.stdout.strip().splitlines()[0].split(","))
    return {"name": name, "compute_cap": cap, "driver_version": driver, "memory_total": memory}


def read_lines(path: str) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return handle.read().splitlines()


def stamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def prove(args: argparse.Namespace, cleanup: list[Any]) -> dict[str, Any]:
    col = load_collection()
    kc, plan_kc, stage_kc = col["kc"], col["plan_kc"], col["stage_kc"]
    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    trays = {name: os.path.join(work, name) for name in ("tray-a", "tray-b", "tray-c")}
    for root in trays.values():
        os.makedirs(root)
    out: dict[str, Any] = {"started_at": stamp(), "dry_run": bool(args.dry_run), "host": platform.node(), "python": platform.python_version()}
    steps: dict[str, float] = {}

    # (a) the key
    t = time.monotonic()
    info = run_child(args, cache_dir=os.path.join(work, "info-cache"), specs=None, work=work, tag="info")
    if info["rc"] != 0 or not info["report"]:
        raise RuntimeError(f"the info child failed: {info['log_tail']}")
    smi = {"name": "no GPU (dry run)"} if args.dry_run else nvidia_smi()
    versions = info["report"]["versions"]
    specs = kernel_set()
    material = config_material(specs)
    config = plan_kc.config_digest(material)
    key = {
        "config": config,
        "image": "none: the host's python3, no container",
        "image_id": f"torch-{versions['torch']}+triton-{versions['triton']}",
        "gpu": info["report"]["capability"],
        "sglang": "n/a",
        "dynamo": "n/a",
    }
    out.update(
        {
            "key": key,
            "key_fields_as_stage_key_of": sorted(stage_kc.key_of({"config": config}, {}, "x", "y")) == sorted(key),
            "config_material": {"kernels": [s["id"] for s in specs], "kernels_source_sha256": material["kernels_source_sha256"]},
            "versions": {**versions, "python": platform.python_version(), "driver": smi.get("driver_version")},
            "gpu": {
                "name": smi.get("name"),
                "torch_device_name": info["report"]["device_name"],
                "capability_torch": info["report"]["capability"],
                "compute_cap_nvidia_smi": smi.get("compute_cap"),
                "memory_total": smi.get("memory_total"),
                "nvidia_smi_error": smi.get("error"),
            },
            "info_child_seconds": info["seconds"],
        }
    )
    steps["key"] = time.monotonic() - t
    cfg = {"config": config, "trays": list(trays), "compile_hosts": ["tray-a"], "deep_gemm": False, "first_worker": "proof", "caches": ["triton"]}

    # Every process sees its tray's cache at one path, as the workers' containers do.
    mount = args.mount or (os.path.join(work, "mnt", "wideep", "kernel-cache") if args.dry_run else plan_kc.CONTAINER_DIR)
    triton_env = plan_kc.cache_env(["triton"])["TRITON_CACHE_DIR"].replace(plan_kc.CONTAINER_DIR, mount, 1)
    out["mount"] = {
        "path": mount,
        "TRITON_CACHE_DIR": triton_env,
        "how": "a symbolic link to the tray's cache directory, re-pointed before each child (the containers' bind mount)",
    }
    cleanup.append(lambda: os.path.islink(mount) and os.unlink(mount))

    def held() -> dict[str, Any]:
        return {name: {config: kc.verify(os.path.join(root, config), key)} for name, root in trays.items()}

    decisions = {"before": stage_kc.decide([cfg], held())[0]["action"]}

    # (b) cold: compile once on tray-a, judged by content, marker, publish, log
    t = time.monotonic()
    root_a = trays["tray-a"]
    staging = os.path.join(root_a, kc.STAGING, config)
    os.makedirs(staging)
    triton_staging = os.path.join(staging, "triton")
    point_mount(mount, staging)
    cold = run_child(args, cache_dir=triton_env, specs=specs, work=work, tag="cold", log_path=os.path.join(root_a, kc.STAGING, f"{config}.log"))
    cold_snap = snapshot(triton_staging)
    found = kc.scan(staging)
    accepted, verdict = kc.judge(cold["rc"], found, False)
    kernels = {"deep_gemm": found["deep_gemm"]["complete"], "triton": found["triton"]["complete"], "other_files": found["other_files"]}
    kc.log_run(root_a, {"config": config, "rc": cold["rc"], "seconds": cold["seconds"], "accepted": accepted, "verdict": verdict, "kernels": kernels})
    if accepted:
        kc.write_marker(staging, key, found, {"compiled": {"seconds": cold["seconds"], "rc": cold["rc"], "verdict": verdict}})
        kc.publish(staging, os.path.join(root_a, config))
    final_a = os.path.join(root_a, config)
    out["cold"] = {
        **child_summary(cold),
        "accepted": accepted,
        "verdict": verdict,
        "scan": {
            "files": found["files"],
            "bytes": found["bytes"],
            "triton_complete": found["triton"]["complete"],
            "triton_incomplete": found["triton"]["incomplete"],
        },
        "cache_dirs": len(cold_snap["dirs"]),
        "kernel_dirs": sum(1 for names in layout_of(cold_snap).values() if is_kernel_dir(names)),
        "launcher_dirs": sum(1 for names in layout_of(cold_snap).values() if names and all(n.endswith(".so") for n in names)),
        "cache_shape": shape_of(cold_snap),
        "published": os.path.isfile(os.path.join(final_a, kc.MARKER)) and not os.path.exists(staging),
        "verify_tray_a": kc.verify(final_a, key, full=True)["state"],
        "compile_log_lines": len(read_lines(os.path.join(root_a, kc.COMPILE_LOG))),
    }
    steps["cold"] = time.monotonic() - t
    if not accepted:
        out["finished_at"] = stamp()
        out["aborted"] = f"the cold compile was not accepted: {verdict}"
        return out
    decisions["after_compile"] = stage_kc.decide([cfg], held())[0]["action"]

    # (c) fan-out to tray-b and tray-c
    t = time.monotonic()
    dests = [os.path.join(trays["tray-b"], config), os.path.join(trays["tray-c"], config)]
    try:
        if args.copy:
            raise RuntimeError("--copy asked for")
        fan = relay_fanout(col, final_a, dests)
        if any(m.get("state") != "complete" for m in fan["members"].values()):
            raise RuntimeError(f"the relay did not complete: {fan['members']}")
    except Exception as exc:  # the fallback says why
        fan = {**copy_fanout(final_a, dests), "relay_error": f"{type(exc).__name__}: {exc}"}
    fan["verify"] = {name: kc.verify(os.path.join(trays[name], config), key, full=True) for name in ("tray-b", "tray-c")}
    fan["verify"] = {name: {"state": v["state"], "why": v["why"], "kernels": v["kernels"]} for name, v in fan["verify"].items()}
    out["fanout"] = fan
    decisions["after_fanout"] = stage_kc.decide([cfg], held())[0]["action"]
    steps["fanout"] = time.monotonic() - t

    # (d) warm: the same kernels from each copy; nothing may be compiled
    t = time.monotonic()
    out["warm"] = {}
    for name in ("tray-b", "tray-c"):
        cache = os.path.join(trays[name], config, "triton")
        before = snapshot(cache)
        point_mount(mount, os.path.join(trays[name], config))
        warm = run_child(args, cache_dir=triton_env, specs=specs, work=work, tag=f"warm-{name}")
        delta = changes(before, snapshot(cache))
        out["warm"][name] = {**child_summary(warm), **delta, "verify_after": kc.verify(os.path.join(trays[name], config), key, full=True)["state"]}
    steps["warm"] = time.monotonic() - t

    # (d') the control: the same copy read at its host path, the mount path gone. Triton's group files
    # name the files by the path they were compiled at (the mount), so this is expected to compile
    # every kernel again: the compile counter can fail.
    t = time.monotonic()
    moved = os.path.join(work, "tray-c-moved")
    shutil.copytree(os.path.join(trays["tray-c"], config), moved, ignore=shutil.ignore_patterns(".wideep*"))
    before = snapshot(os.path.join(moved, "triton"))
    os.unlink(mount)  # a host where the mount path leads nowhere, as on a tray that runs no container
    run_moved = run_child(args, cache_dir=os.path.join(moved, "triton"), specs=specs, work=work, tag="moved")
    delta = changes(before, snapshot(os.path.join(moved, "triton")))
    out["moved_path_control"] = {
        "what": "a copy of tray-c's cache at another host path, TRITON_CACHE_DIR pointing there directly, the mount path absent",
        **child_summary(run_moved),
        **delta,
        "verify_after": kc.verify(moved, key, full=True)["state"],
    }
    steps["moved_control"] = time.monotonic() - t

    # (e) a changed configuration: one kernel with another block size
    if not args.skip_changed:
        t = time.monotonic()
        specs2, old_id, new_id = changed_kernel_set(specs)
        config2 = plan_kc.config_digest(config_material(specs2))
        key2 = {**key, "config": config2}
        scratch = os.path.join(work, "tray-c-scratch")
        shutil.copytree(os.path.join(trays["tray-c"], config), scratch, ignore=shutil.ignore_patterns(".wideep*"))
        before = snapshot(os.path.join(scratch, "triton"))
        point_mount(mount, scratch)
        run2 = run_child(args, cache_dir=triton_env, specs=specs2, work=work, tag="changed")
        delta = changes(before, snapshot(os.path.join(scratch, "triton")))
        out["changed"] = {
            "kernel_changed": f"{old_id} -> {new_id}",
            "config": config2,
            "config_differs": config2 != config,
            "old_cache_against_new_key": kc.verify(os.path.join(trays["tray-c"], config), key2)["state"],
            "decision_for_new_config": stage_kc.decide(
                [{**cfg, "config": config2}], {n: {config2: kc.verify(os.path.join(r, config2), key2)} for n, r in trays.items()}
            )[0]["action"],
            "run_on_scratch_copy_of_old_cache": {**child_summary(run2), **delta},
        }
        steps["changed"] = time.monotonic() - t

    # (f) stale and damaged caches
    other_gpu = {**key, "gpu": "10.0" if key["gpu"] != "10.0" else "9.0"}
    stale = kc.verify(os.path.join(trays["tray-b"], config), other_gpu)
    damaged_dir = os.path.join(work, "tray-b-damaged")
    shutil.copytree(os.path.join(trays["tray-b"], config), damaged_dir)
    cubin = next(os.path.join(d, f) for d, _s, fs in sorted(os.walk(damaged_dir)) for f in sorted(fs) if f.endswith(".cubin"))
    with open(cubin, "r+b") as handle:
        handle.truncate(os.path.getsize(cubin) // 2)
    damaged = kc.verify(damaged_dir, key)
    out["stale"] = {"other_gpu_key": other_gpu["gpu"], "state": stale["state"], "why": stale["why"]}
    out["damaged"] = {"what": "one .cubin truncated to half", "state": damaged["state"], "why": damaged["why"].replace(damaged_dir, "<copy>")}
    out["decisions"] = decisions

    # figures
    warm_b = out["warm"]["tray-b"]
    out["cold_seconds"] = out["cold"]["seconds"]
    out["warm_seconds"] = warm_b["seconds"]
    out["ratio"] = round(out["cold_seconds"] / max(out["warm_seconds"], 1e-9), 2)
    ck, wk = out["cold"]["kernels_seconds"], warm_b["kernels_seconds"]
    out["cold_kernels_seconds"], out["warm_kernels_seconds"] = ck, wk
    out["kernels_ratio"] = round(ck / max(wk, 1e-9), 2) if isinstance(ck, (int, float)) and isinstance(wk, (int, float)) else None
    out["kernels_per_cache"] = {
        "cold_tray-a": out["cold"]["scan"]["triton_complete"],
        **{n: v["kernels"].get("triton") for n, v in out["fanout"]["verify"].items()},
    }
    out["compiles"] = {
        "tray-a": out["cold"]["kernel_dirs"],
        "tray-b": out["warm"]["tray-b"]["compiles"],
        "tray-c": out["warm"]["tray-c"]["compiles"],
        "moved-path control": out["moved_path_control"]["compiles"],
    }
    out["verify_states"] = {
        "tray-a": out["cold"]["verify_tray_a"],
        **{n: v["state"] for n, v in out["fanout"]["verify"].items()},
        **{f"{n}-after-warm": v["verify_after"] for n, v in out["warm"].items()},
        "stale-gpu": stale["state"],
        "damaged": damaged["state"],
        **({"old-cache-vs-changed-config": out["changed"]["old_cache_against_new_key"]} if "changed" in out else {}),
    }
    out["step_seconds"] = {k: round(v, 3) for k, v in steps.items()}
    out["finished_at"] = stamp()
    return out


def table(out: dict[str, Any]) -> str:
    if "aborted" in out:
        return f"ABORTED: {out['aborted']}\n" + "\n".join(out["cold"].get("log_tail", []))
    rows = [
        ("GPU", f"{out['gpu']['name']} (capability {out['key']['gpu']}), driver {out['versions'].get('driver')}"),
        ("image_id", out["key"]["image_id"]),
        ("config", out["key"]["config"]),
        (
            "cold compile (tray-a)",
            f"{out['cold_seconds']:.2f} s process, {out['cold_kernels_seconds']} s kernels; "
            f"{out['cold']['kernels_ok']}/{out['cold']['kernels_run']} results match torch",
        ),
        (
            "warm (tray-b)",
            f"{out['warm_seconds']:.2f} s process, {out['warm_kernels_seconds']} s kernels; "
            f"{out['warm']['tray-b']['kernels_ok']}/{out['warm']['tray-b']['kernels_run']} match",
        ),
        ("warm (tray-c)", f"{out['warm']['tray-c']['seconds']:.2f} s process, {out['warm']['tray-c']['kernels_seconds']} s kernels"),
        ("ratio cold/warm", f"{out['ratio']} (process), {out['kernels_ratio']} (kernels only)"),
        ("kernels per cache", json.dumps(out["kernels_per_cache"])),
        ("compiles (kernel dirs written)", json.dumps(out["compiles"])),
        ("files written by warm runs", json.dumps({n: v["files_added"] + v["files_rewritten"] + v["files_removed"] for n, v in out["warm"].items()})),
        (
            "moved-path control",
            f"{out['moved_path_control']['compiles']} compiles, {out['moved_path_control']['seconds']:.2f} s process, "
            f"verify after: {out['moved_path_control']['verify_after']}",
        ),
        (
            "fan-out",
            f"{out['fanout']['method'].split(' (')[0]}: {out['fanout'].get('files')} files, "
            f"{out['fanout'].get('bytes', '?')} bytes, {out['fanout']['seconds']} s",
        ),
        ("verify", json.dumps(out["verify_states"])),
        ("decide()", json.dumps(out["decisions"])),
    ]
    if "changed" in out:
        run = out["changed"]["run_on_scratch_copy_of_old_cache"]
        rows.append(
            (
                "changed config",
                f"{out['changed']['kernel_changed']}: {run['compiles']} kernel compiled, {run['files_changed']} files changed, {run['seconds']:.2f} s",
            )
        )
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="the JSON report")
    parser.add_argument("--work", default=os.path.join("/tmp", f"wideep-kernel-cache-proof-{os.getpid()}"), help="scratch directory (removed first)")
    parser.add_argument("--dry-run", action="store_true", help="use the FAKE CHILD (no GPU): checks the orchestration only")
    parser.add_argument("--copy", action="store_true", help="fan out by a sha256-verified copy instead of the relay")
    parser.add_argument("--skip-changed", action="store_true", help="skip step (e), the changed configuration")
    parser.add_argument("--child-timeout", type=float, default=420.0)
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--mount", help="the fixed path every child sees its tray's cache at (default /wideep/kernel-cache; with --dry-run, one under --work)")
    args = parser.parse_args(argv)
    began = time.monotonic()
    cleanup: list[Any] = []
    try:
        out = prove(args, cleanup)
    finally:
        for step in cleanup:
            step()
        if not args.keep:
            shutil.rmtree(os.path.abspath(args.work), ignore_errors=True)
    out["total_seconds"] = round(time.monotonic() - began, 3)
    out["command"] = " ".join([os.path.relpath(sys.argv[0], REPO) if argv is None else "triton_proof.main", *(sys.argv[1:] if argv is None else argv)])
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(out, handle, indent=1, sort_keys=True)
    sys.stdout.write(table(out) + "\n")
    return 0 if "aborted" not in out else 1


if __name__ == "__main__":
    sys.exit(main())
