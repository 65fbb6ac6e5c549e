# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A tray's JIT kernel caches: what they hold, the completion marker, and a compile run.

Layout under the cache root (gb200_kernel_cache_dir) on every tray:
  ROOT/<config>/                 one compile configuration's cache, mounted at /wideep/kernel-cache
  ROOT/<config>/KEY.json         the completion marker: the full key (the plan's configuration,
                                 the image ID, the GPUs' compute capability), what the cache
                                 holds, and every file with its size and sha256
  ROOT/.staging/<config>/        where a compile writes; published by rename once judged
  ROOT/compile-log.jsonl         one line per compile run on this tray (what the benchmark counts)

A cache is *complete* when KEY.json is present, its key is the key wanted now, and every file it
lists is present with its size (and sha256, when asked). A worker then starts warm; anything
else is compiled again (or received from a tray that holds it).

Standard library only: it runs on the trays.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from typing import Any

MARKER = "KEY.json"
STAGING = ".staging"
COMPILE_LOG = "compile-log.jsonl"
MARKER_VERSION = 1


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _walk(root: str) -> list[str]:
    """Every regular file under root, relative, sorted; the marker and .wideep state left out."""
    out: list[str] = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".wideep"))
        for name in sorted(files):
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            if rel == MARKER or name.startswith(".wideep"):
                continue
            if os.path.isfile(os.path.join(root, rel)) and not os.path.islink(os.path.join(root, rel)):
                out.append(rel)
    return out


def scan(root: str) -> dict[str, Any]:
    """What a cache directory holds, by kind of cache.

    deep_gemm: ROOT/deep_gemm/cache/kernel.<name>.<hash>/ is one kernel; complete when it holds a
    non-empty kernel.cubin (DeepGEMM writes the source first, the binary last).
    triton: ROOT/triton/<hash>/ is one kernel; complete when it holds its metadata (*.json) and a
    non-empty binary (*.cubin, *.hsaco, *.so).
    Other caches: their files are counted."""
    out: dict[str, Any] = {
        "files": 0,
        "bytes": 0,
        "deep_gemm": {"complete": 0, "incomplete": []},
        "triton": {"complete": 0, "incomplete": []},
        "other_files": 0,
    }
    if not os.path.isdir(root):
        return out
    for rel in _walk(root):
        out["files"] += 1
        out["bytes"] += os.path.getsize(os.path.join(root, rel))
        if not rel.startswith(("deep_gemm/", "triton/")):
            out["other_files"] += 1
    dg = os.path.join(root, "deep_gemm", "cache")
    if os.path.isdir(dg):
        for name in sorted(os.listdir(dg)):
            kernel = os.path.join(dg, name)
            if not (name.startswith("kernel.") and os.path.isdir(kernel)):
                continue
            cubin = os.path.join(kernel, "kernel.cubin")
            if os.path.isfile(cubin) and os.path.getsize(cubin) > 0:
                out["deep_gemm"]["complete"] += 1
            else:
                out["deep_gemm"]["incomplete"].append(name)
    tr = os.path.join(root, "triton")
    if os.path.isdir(tr):
        for name in sorted(os.listdir(tr)):
            kernel = os.path.join(tr, name)
            if not os.path.isdir(kernel):
                continue
            files = os.listdir(kernel)
            if files and all(f.endswith(".so") for f in files):
                continue  # a compiled helper module (Triton's launcher, cuda_utils), not a kernel
            meta = any(f.endswith(".json") for f in files)
            binary = any(f.endswith((".cubin", ".hsaco", ".so")) and os.path.getsize(os.path.join(kernel, f)) > 0 for f in files)
            if meta and binary:
                out["triton"]["complete"] += 1
            else:  # intermediate stages only: a kernel being compiled, or abandoned
                out["triton"]["incomplete"].append(name)
    return out


def parse_marker(text: str | None) -> dict[str, Any] | None:
    """A marker's JSON object; None when there is none or it is not one."""
    try:
        data = json.loads(text) if text is not None else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def read_marker(root: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(root, MARKER), encoding="utf-8") as handle:
            return parse_marker(handle.read())
    except (OSError, ValueError):
        return None


def count_compiles(lines: Iterable[str]) -> dict[str, int]:
    """Compile runs per configuration, from the lines of compile-log.jsonl (bad lines skipped)."""
    compiles: dict[str, int] = {}
    for line in lines:
        try:
            config = str(json.loads(line).get("config"))
        except (ValueError, AttributeError):
            continue
        compiles[config] = compiles.get(config, 0) + 1
    return compiles


def key_differences(have: dict[str, Any] | None, want: dict[str, Any]) -> list[str]:
    """The fields of the key that differ (every wanted field, when there is no marker)."""
    have = have or {}
    return [f"{name}: {have.get(name)!r} here, {value!r} wanted" for name, value in sorted(want.items()) if have.get(name) != value]


def _size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def verify(root: str, key: dict[str, Any], full: bool = False) -> dict[str, Any]:
    """{state: absent|stale|incomplete|complete, why, kernels} of one cache directory against a key."""
    return verify_marker(root, read_marker(root), key, _size, _sha256 if full else None)


def verify_marker(
    root: str, marker: dict[str, Any] | None, key: dict[str, Any], size_of: Callable[[str], int | None], sha256_of: Callable[[str], str] | None = None
) -> dict[str, Any]:
    """verify's judgement from a marker already read and a way to learn a file's size (None: no
    such file) and, for a full verify, its sha256: the module reads the tray's files, the
    kernel_cache_info action a listing its shell read took."""
    if marker is None:
        return {"state": "absent", "why": f"no {MARKER} in {root}", "kernels": {}}
    kernels = marker.get("kernels", {})
    differences = key_differences(marker.get("key"), key)
    if differences:
        return {"state": "stale", "why": "key differs: " + "; ".join(differences), "kernels": kernels}
    for entry in marker.get("files", []):
        path = os.path.join(root, str(entry.get("path", "")))
        size = size_of(path)
        if size is None:
            return {"state": "incomplete", "why": f"{entry.get('path')} is missing", "kernels": kernels}
        if size != entry.get("size"):
            return {"state": "incomplete", "why": f"{entry.get('path')} has {size} bytes, {entry.get('size')} expected", "kernels": kernels}
        if sha256_of is not None and sha256_of(path) != entry.get("sha256"):
            return {"state": "incomplete", "why": f"{entry.get('path')} does not match its sha256", "kernels": kernels}
    return {"state": "complete", "why": "", "kernels": kernels}


def judge(rc: int | None, found: dict[str, Any], deep_gemm: bool) -> tuple[bool, str]:
    """Whether a compile run produced a usable cache, decided by what it wrote, not its exit code.

    SGLang's compile_deep_gemm serves one request once the kernels are built; in a disaggregated
    configuration that request can fail for want of a real bootstrap server although every
    kernel is cached. Such a run is accepted when the cache holds complete kernels and none half
    written."""
    dg = found["deep_gemm"]
    if rc is None:
        return False, "timed out"
    if dg["incomplete"]:
        return False, f"exit code {rc}; {len(dg['incomplete'])} DeepGEMM kernel(s) half written ({', '.join(dg['incomplete'][:3])})"
    if deep_gemm and dg["complete"] == 0:
        return False, f"exit code {rc} and no DeepGEMM kernel in the cache"
    if rc != 0 and dg["complete"] + found["triton"]["complete"] == 0:
        return False, f"exit code {rc} and no kernel in the cache"
    if rc != 0:
        return True, f"exit code {rc}, accepted by content: {dg['complete']} DeepGEMM and {found['triton']['complete']} Triton kernels cached"
    return True, f"{dg['complete']} DeepGEMM and {found['triton']['complete']} Triton kernels cached"


def write_marker(root: str, key: dict[str, Any], found: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    files: list[dict[str, Any]] = [
        {"path": rel, "size": os.path.getsize(os.path.join(root, rel)), "sha256": _sha256(os.path.join(root, rel))} for rel in _walk(root)
    ]
    marker = {
        "version": MARKER_VERSION,
        "key": key,
        "kernels": {"deep_gemm": found["deep_gemm"]["complete"], "triton": found["triton"]["complete"], "other_files": found["other_files"]},
        "files": files,
        "bytes": sum(int(f["size"]) for f in files),
        **extra,
    }
    partial = os.path.join(root, MARKER + ".partial")
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(marker, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, os.path.join(root, MARKER))
    return marker


def publish(staging: str, final: str) -> None:
    """Put a judged cache in place: no worker ever sees half of one."""
    old = f"{final}.old-{os.getpid()}"
    if os.path.exists(final):
        os.rename(final, old)
    os.rename(staging, final)
    shutil.rmtree(old, ignore_errors=True)


def log_run(root: str, record: dict[str, Any]) -> None:
    with open(os.path.join(root, COMPILE_LOG), "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **record}, sort_keys=True) + "\n")


def count_files(root: str) -> int:
    total = 0
    for _dirpath, _dirs, files in os.walk(root):
        total += len(files)
    return total
