"""TEST DOUBLE of `python3 -m sglang.compile_deep_gemm` for the emulated trays (no GPU, no DeepGEMM).

wideep.gb200.kernel_cache runs the real entry point on GB200 trays; the emulated inventory points
kernel_cache_compile_command at this script instead. It stands in for exactly what the role relies
on and nothing more:
  - it takes the worker's SGLang flags (the real one parses them as ServerArgs), and records them,
    with its environment's cache variables, in <cache>/wideep-emu-compile/args-rank<node-rank>.json;
  - it writes a cache shaped like the real ones, kernel by kernel over a few seconds (so progress
    and a timeout can be seen): DeepGEMM's <SGLANG_DG_CACHE_DIR>/cache/kernel.<name>.<hash>/ with
    kernel.cu first and kernel.cubin last, and Triton's <TRITON_CACHE_DIR>/<hash>/ (metadata JSON and a
    .cubin). Which kernels, and their bytes, follow from the flags that shape the GEMMs, so a changed
    configuration writes other kernels;
  - WIDEEP_EMU_COMPILE_FAIL picks a failure: `bootstrap` (every kernel cached, then the sync request
    fails, as the real compile can in a disaggregated configuration: exit 1), `error` (a CUDA
    out-of-memory traceback before any kernel: exit 1), `hang` (never ends: the role's timeout).
WIDEEP_EMU_COMPILE_SECONDS sets how long it takes (default 2).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time

SHAPING = (
    "tp-size",
    "dp-size",
    "ep-size",
    "cuda-graph-max-bs",
    "cuda-graph-max-bs-decode",
    "chunked-prefill-size",
    "max-running-requests",
    "quantization",
    "moe-a2a-backend",
    "disaggregation-mode",
)


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def flags(argv: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    name = None
    for item in argv:
        if item.startswith("--"):
            name = item[2:]
            out[name] = "true"
        elif name is not None:
            out[name] = item if out[name] == "true" else f"{out[name]} {item}"
    return out


def main() -> int:
    argv = sys.argv[1:]
    given = flags(argv)
    rank = given.get("node-rank", "0")
    dg_dir = os.environ.get("SGLANG_DG_CACHE_DIR") or os.environ.get("SGL_DG_CACHE_DIR") or os.path.expanduser("~/.cache/deep_gemm")
    triton_dir = os.environ.get("TRITON_CACHE_DIR") or os.path.expanduser("~/.triton/cache")
    base = os.path.dirname(dg_dir.rstrip("/"))
    seconds = float(os.environ.get("WIDEEP_EMU_COMPILE_SECONDS", "2"))
    mode = os.environ.get("WIDEEP_EMU_COMPILE_FAIL", "")
    record = os.path.join(base, "wideep-emu-compile")
    os.makedirs(record, exist_ok=True)
    with open(os.path.join(record, f"args-rank{rank}.json"), "w", encoding="utf-8") as handle:
        json.dump({"argv": argv, "env": {k: v for k, v in os.environ.items() if k.endswith(("CACHE_DIR", "WORKSPACE_BASE"))}}, handle, indent=1, sort_keys=True)
    say("[test double] compile_deep_gemm: Begin DeepGEMM Kernels compilation...")
    if mode == "error":
        say("Traceback (most recent call last):")
        say('  File "sglang/compile_deep_gemm.py", line 1')
        say("torch.OutOfMemoryError: CUDA out of memory. (test double)")
        return 1
    if mode == "hang":
        while True:
            time.sleep(1)
    shape = "|".join(f"{k}={given.get(k, '')}" for k in SHAPING)
    digest = hashlib.sha256(shape.encode()).hexdigest()
    names = [f"fp8_gemm_nt_{i}" for i in range(6 + int(digest[0], 16) % 6)] + ["m_grouped_fp8_gemm_nt_masked", "m_grouped_fp8_gemm_nt_contiguous"]
    step = seconds / max(len(names), 1)
    for i, name in enumerate(names):
        kernel = os.path.join(dg_dir, "cache", f"kernel.{name}.{hashlib.sha256((shape + name).encode()).hexdigest()[:32]}")
        os.makedirs(kernel, exist_ok=True)
        with open(os.path.join(kernel, "kernel.cu"), "w", encoding="utf-8") as handle:
            handle.write(f"// {name} for {shape}\n")
        time.sleep(step)
        with open(os.path.join(kernel, "kernel.cubin"), "wb") as handle:
            handle.write(hashlib.sha256((shape + name).encode()).digest() * 2048)
        say(f"[test double] compiled {i + 1}/{len(names)} {name}")
    for i in range(3):
        key = hashlib.sha256(f"{shape}|triton{i}".encode()).hexdigest()
        kernel = os.path.join(triton_dir, key)
        os.makedirs(kernel, exist_ok=True)
        with open(os.path.join(kernel, f"_fwd_kernel_{i}.json"), "w", encoding="utf-8") as handle:
            json.dump({"name": f"_fwd_kernel_{i}", "hash": key}, handle)
        with open(os.path.join(kernel, f"_fwd_kernel_{i}.cubin"), "wb") as handle:
            handle.write(bytes.fromhex(key) * 512)
    if mode == "bootstrap":
        say("RuntimeError: Sync request failed: {'error': 'bootstrap server not reachable'} (test double)")
        return 1
    say("[test double] DeepGEMM Kernels compilation finished successfully.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
