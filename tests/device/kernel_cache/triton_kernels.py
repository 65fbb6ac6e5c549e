# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The child process of triton_proof.py: JIT-compiles (or loads from TRITON_CACHE_DIR) and runs a set of
Triton kernels, checks each result against PyTorch, and writes a JSON report.

  --info           report the versions and the GPU only (no kernel runs)
  --spec FILE      the kernel set (a JSON list written by triton_proof.py)
  --report FILE    where the report goes
  --fake           FAKE CHILD, no GPU: writes a Triton-shaped cache (one directory per kernel, named by a
                   hash of its spec, holding <name>.json, <name>.cubin, the intermediate stages and a
                   group file listing them by absolute path; one launcher directory holding a .so) into
                   TRITON_CACHE_DIR, and leaves a kernel whose group file resolves alone, as Triton 3.6
                   does on a cache hit. It exists so that the
                   orchestration can be tested where no GPU is; its figures mean nothing.

The kernels are ours: a tiled matmul (fp32 accumulation), a row softmax, a layer norm and a fused
add+GELU, each compiled once per (block sizes, dtype, warps, stages) as Triton does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time

STARTED = time.monotonic()


# The real child imports torch and Triton at module level, so that the kernels below are module-level
# functions whose names (tl, ...) Triton resolves as globals; the fake child imports neither.
_REAL = "--fake" not in sys.argv[1:]
if _REAL:
    import torch
    import triton
    import triton.language as tl

    @triton.jit
    def matmul_kernel(
        a_ptr, b_ptr, c_ptr, m, n, k, sam, sak, sbk, sbn, scm, scn, block_m: tl.constexpr, block_n: tl.constexpr, block_k: tl.constexpr, group_m: tl.constexpr
    ):
        pid = tl.program_id(0)
        grid_m = tl.cdiv(m, block_m)
        grid_n = tl.cdiv(n, block_n)
        per_group = group_m * grid_n
        group = pid // per_group
        first_m = group * group_m
        size_m = min(grid_m - first_m, group_m)
        pid_m = first_m + (pid % per_group) % size_m
        pid_n = (pid % per_group) // size_m
        rm = pid_m * block_m + tl.arange(0, block_m)
        rn = pid_n * block_n + tl.arange(0, block_n)
        rk = tl.arange(0, block_k)
        acc = tl.zeros((block_m, block_n), dtype=tl.float32)
        for k0 in range(0, k, block_k):
            a = tl.load(a_ptr + rm[:, None] * sam + (k0 + rk)[None, :] * sak, mask=(rm[:, None] < m) & ((k0 + rk)[None, :] < k), other=0.0)
            b = tl.load(b_ptr + (k0 + rk)[:, None] * sbk + rn[None, :] * sbn, mask=((k0 + rk)[:, None] < k) & (rn[None, :] < n), other=0.0)
            acc = tl.dot(a, b, acc)
        tl.store(c_ptr + rm[:, None] * scm + rn[None, :] * scn, acc.to(c_ptr.dtype.element_ty), mask=(rm[:, None] < m) & (rn[None, :] < n))

    @triton.jit
    def softmax_kernel(x_ptr, y_ptr, n_cols, stride, block: tl.constexpr):
        row = tl.program_id(0)
        cols = tl.arange(0, block)
        mask = cols < n_cols
        x = tl.load(x_ptr + row * stride + cols, mask=mask, other=-float("inf")).to(tl.float32)
        x = x - tl.max(x, axis=0)
        e = tl.exp(x)
        y = e / tl.sum(e, axis=0)
        tl.store(y_ptr + row * stride + cols, y.to(y_ptr.dtype.element_ty), mask=mask)

    @triton.jit
    def layernorm_kernel(x_ptr, w_ptr, b_ptr, y_ptr, n_cols, stride, eps, block: tl.constexpr):
        row = tl.program_id(0)
        cols = tl.arange(0, block)
        mask = cols < n_cols
        x = tl.load(x_ptr + row * stride + cols, mask=mask, other=0.0).to(tl.float32)
        mean = tl.sum(x, axis=0) / n_cols
        d = tl.where(mask, x - mean, 0.0)
        var = tl.sum(d * d, axis=0) / n_cols
        w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
        b = tl.load(b_ptr + cols, mask=mask, other=0.0).to(tl.float32)
        y = d * tl.rsqrt(var + eps) * w + b
        tl.store(y_ptr + row * stride + cols, y.to(y_ptr.dtype.element_ty), mask=mask)

    @triton.jit
    def add_gelu_kernel(x_ptr, r_ptr, y_ptr, n, block: tl.constexpr):
        offs = tl.program_id(0) * block + tl.arange(0, block)
        mask = offs < n
        x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32) + tl.load(r_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        # tanh-form GELU, tanh(u) = 2 * sigmoid(2u) - 1
        u = 0.7978845608028654 * (x + 0.044715 * x * x * x)
        y = 0.5 * x * (1.0 + (2.0 * tl.sigmoid(2.0 * u) - 1.0))
        tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


# ---- the fake child (no GPU) ------------------------------------------------------------------
def _replace(path: str, data: bytes) -> None:
    """Write through a temporary file and a rename, as Triton's cache does (a new inode each time)."""
    partial = f"{path}.tmp.{os.getpid()}"
    with open(partial, "wb") as handle:
        handle.write(data)
    os.replace(partial, path)


def fake(specs: list[dict], report_path: str) -> int:
    cache = os.environ["TRITON_CACHE_DIR"]
    os.makedirs(cache, exist_ok=True)
    results = []
    launcher = os.path.join(cache, hashlib.sha256(b"fake-launcher").hexdigest()[:52])
    if not os.path.isdir(launcher):
        os.makedirs(launcher)
        _replace(os.path.join(launcher, "__triton_launcher.cpython-312-x86_64-linux-gnu.so"), b"\x7fELF fake launcher")
    for spec in specs:
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
        directory = os.path.join(cache, digest[:52])
        name = f"{spec['kernel']}_kernel"
        # As Triton 3.6 does (seen on the H200): a kernel is found through its group file
        # __grp__<name>.json, which lists its files by ABSOLUTE path under TRITON_CACHE_DIR; a group
        # whose files are not at those paths is a miss, and the kernel is compiled again into the
        # same directory (every file replaced).
        group = os.path.join(directory, f"__grp__{name}.json")
        hit = False
        if os.path.isfile(group):
            with open(group, encoding="utf-8") as handle:
                paths = json.load(handle).get("child_paths", {})
            hit = f"{name}.json" in paths and all(os.path.exists(p) for p in paths.values())
        if not hit:
            os.makedirs(directory, exist_ok=True)
            contents: dict[str, bytes] = {f"{name}.{s}": f"fake {s} of {spec['id']}\n".encode() for s in ("source", "ttir", "ttgir", "llir", "ptx")}
            contents[f"{name}.cubin"] = hashlib.sha256(digest.encode()).digest() * 64
            contents[f"{name}.json"] = json.dumps({"name": name, "hash": digest, "spec": spec}).encode()
            for filename, data in contents.items():
                _replace(os.path.join(directory, filename), data)
            _replace(group, json.dumps({"child_paths": {f: os.path.join(directory, f) for f in contents}}).encode())
        results.append({"id": spec["id"], "ok": True, "max_rel_err": 0.0, "first_call_s": 0.0, "fake_compiled": not hit})
    report = {
        "fake": True,
        "versions": {"torch": "fake", "triton": "fake", "cuda": "fake"},
        "capability": "dry-run",
        "device_name": "no GPU (fake child)",
        "import_seconds": 0.0,
        "kernels_seconds": 0.0,
        "results": results,
        "all_ok": True,
        "seconds": round(time.monotonic() - STARTED, 3),
    }
    with open(report_path, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1)
    return 0


# ---- the real child (GPU) ---------------------------------------------------------------------
def real(specs: list[dict] | None, report_path: str) -> int:
    imported = time.monotonic()
    cap = torch.cuda.get_device_capability()
    info = {
        "fake": False,
        "versions": {"torch": torch.__version__, "triton": triton.__version__, "cuda": torch.version.cuda},
        "capability": f"{cap[0]}.{cap[1]}",
        "device_name": torch.cuda.get_device_name(),
        "triton_cache_dir_env": os.environ.get("TRITON_CACHE_DIR"),
        "import_seconds": round(imported - STARTED, 3),
    }
    if specs is None:
        with open(report_path, "w", encoding="utf-8") as handle:
            json.dump({**info, "seconds": round(time.monotonic() - STARTED, 3)}, handle, indent=1)
        return 0

    dtypes = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
    gen = torch.Generator(device="cuda").manual_seed(0)

    def randn(*shape: int, dtype: torch.dtype) -> torch.Tensor:
        return torch.randn(*shape, device="cuda", generator=gen, dtype=torch.float32).to(dtype)

    def run_one(spec: dict) -> tuple[torch.Tensor, torch.Tensor]:
        dt = dtypes[spec["dtype"]]
        kw = {"num_warps": spec["num_warps"], "num_stages": spec.get("num_stages", 3)}
        if spec["kernel"] == "matmul":
            m, n, k = spec["shape"]
            a, b = randn(m, k, dtype=dt), randn(k, n, dtype=dt)
            c = torch.empty(m, n, device="cuda", dtype=dt)
            grid = (triton.cdiv(m, spec["BLOCK_M"]) * triton.cdiv(n, spec["BLOCK_N"]),)
            matmul_kernel[grid](
                a,
                b,
                c,
                m,
                n,
                k,
                a.stride(0),
                a.stride(1),
                b.stride(0),
                b.stride(1),
                c.stride(0),
                c.stride(1),
                block_m=spec["BLOCK_M"],
                block_n=spec["BLOCK_N"],
                block_k=spec["BLOCK_K"],
                group_m=8,
                **kw,
            )
            return c, (a.float() @ b.float())
        if spec["kernel"] == "softmax":
            rows, cols = spec["shape"]
            x = randn(rows, cols, dtype=dt)
            y = torch.empty_like(x)
            softmax_kernel[(rows,)](x, y, cols, x.stride(0), block=spec["BLOCK"], **kw)
            return y, torch.softmax(x.float(), dim=-1)
        if spec["kernel"] == "layernorm":
            rows, cols = spec["shape"]
            x, w, b = randn(rows, cols, dtype=dt), randn(cols, dtype=dt), randn(cols, dtype=dt)
            y = torch.empty_like(x)
            layernorm_kernel[(rows,)](x, w, b, y, cols, x.stride(0), 1e-5, block=spec["BLOCK"], **kw)
            return y, torch.nn.functional.layer_norm(x.float(), (cols,), w.float(), b.float(), 1e-5)
        if spec["kernel"] == "add_gelu":
            (n,) = spec["shape"]
            x, r = randn(n, dtype=dt), randn(n, dtype=dt)
            y = torch.empty_like(x)
            add_gelu_kernel[(triton.cdiv(n, spec["BLOCK"]),)](x, r, y, n, block=spec["BLOCK"], **kw)
            return y, torch.nn.functional.gelu(x.float() + r.float(), approximate="tanh")
        raise ValueError(f"unknown kernel {spec['kernel']!r}")

    tolerance = {"float32": 1e-4, "float16": 1e-2, "bfloat16": 3e-2}
    results = []
    began = time.monotonic()
    for spec in specs:
        t0 = time.monotonic()
        try:
            out, ref = run_one(spec)
            torch.cuda.synchronize()
            first = time.monotonic() - t0
            err = ((out.float() - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item()
            results.append({"id": spec["id"], "ok": err <= tolerance[spec["dtype"]], "max_rel_err": err, "first_call_s": round(first, 3)})
        except Exception as exc:  # reported; the orchestrator judges
            results.append({"id": spec["id"], "ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000], "first_call_s": round(time.monotonic() - t0, 3)})
    kernels_seconds = time.monotonic() - began
    report = {
        **info,
        "kernels_seconds": round(kernels_seconds, 3),
        "results": results,
        "all_ok": all(r["ok"] for r in results),
        "seconds": round(time.monotonic() - STARTED, 3),
    }
    with open(report_path, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1)
    return 0 if report["all_ok"] else 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec")
    parser.add_argument("--report", required=True)
    parser.add_argument("--info", action="store_true")
    parser.add_argument("--fake", action="store_true")
    args = parser.parse_args(argv)
    specs = None
    if not args.info:
        if not args.spec:
            parser.error("--spec is needed unless --info")
        with open(args.spec, encoding="utf-8") as handle:
            specs = json.load(handle)
    if args.fake:
        if specs is None:
            with open(args.report, "w", encoding="utf-8") as handle:
                json.dump(
                    {
                        "fake": True,
                        "versions": {"torch": "fake", "triton": "fake", "cuda": "fake"},
                        "capability": "dry-run",
                        "device_name": "no GPU (fake child)",
                        "import_seconds": 0.0,
                        "seconds": 0.0,
                    },
                    handle,
                )
            return 0
        return fake(specs, args.report)
    return real(specs, args.report)


if __name__ == "__main__":
    sys.exit(main())
