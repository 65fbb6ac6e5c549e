# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""The plan's half of the kernel-cache key: which workers share compiled kernels, and where.

A *compile configuration* is what decides which kernels a worker JIT-compiles: the SGLang flags
that shape its GEMMs and attention (every flag but the identity and networking ones below), the
number of trays, its role, the model, the image name and the engine versions. Workers with the
same configuration share one cache; a different `cuda-graph-max-bs`, say, is another
configuration. The plan knows this half before any tray is contacted, so the cache directory
(`<gb200_kernel_cache_dir>/<config>`) is in the launch scripts. The other half of the key is read
on the trays at stage time (the image ID, the GPUs' compute capability) and written into the
cache's marker (KEY.json); docs/kernel-cache.md documents both.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

# Flags that name, place or watch a worker without changing a kernel it compiles.
IDENTITY_FLAGS = frozenset(
    {
        "dist-init-addr",
        "node-rank",
        "host",
        "port",
        "disaggregation-bootstrap-port",
        "disaggregation-ib-device",
        "served-model-name",
        "model-path",  # where the weights are mounted; the model itself is in the key (recipe hf_repo)
        "log-level",
        "log-level-http",
        "log-requests",
        "decode-log-interval",
        "enable-metrics",
        "dist-timeout",
        "watchdog-timeout",
        "endpoint",
    }
)

# Where a worker container sees its tray's copy of its configuration's cache.
CONTAINER_DIR = "/wideep/kernel-cache"

# The variables each cache is read from, under CONTAINER_DIR. DeepGEMM's depends on the SGLang
# version (SGL_DG_CACHE_DIR up to 0.5.4, SGLANG_DG_CACHE_DIR after): the one the engine's
# catalogue says it reads is used. FlashInfer appends .cache/flashinfer to its base.
THIRD_PARTY_ENV = {
    "triton": ("TRITON_CACHE_DIR", "triton"),
    "flashinfer": ("FLASHINFER_WORKSPACE_BASE", "flashinfer"),
    "tilelang": ("TILELANG_CACHE_DIR", "tilelang"),
    "inductor": ("TORCHINDUCTOR_CACHE_DIR", "inductor"),
}
DEEP_GEMM_ENV = ("SGLANG_DG_CACHE_DIR", "SGL_DG_CACHE_DIR")


def config_material(
    *,
    role: str,
    nnodes: int,
    flags: Iterable[tuple[str, Any]],
    model: str,
    image: str,
    engine: Mapping[str, str],
    caches: Iterable[str],
) -> dict[str, Any]:
    """What the configuration digest is computed from (kept in KEY.json, so a person can diff two)."""
    kernel_flags = sorted([name, "" if value is True else str(value)] for name, value in flags if name not in IDENTITY_FLAGS and value is not False)
    return {
        "role": role,
        "nnodes": nnodes,
        "flags": kernel_flags,
        "model": model,
        "image": image,
        "engine": {"sglang": engine.get("sglang", ""), "dynamo": engine.get("dynamo", "")},
        "caches": sorted(caches),
    }


def config_digest(material: Mapping[str, Any]) -> str:
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def cache_env(caches: Iterable[str], reads: Any = None) -> dict[str, str]:
    """The environment that points a worker's JIT caches at CONTAINER_DIR.

    reads(name) -> bool: whether the engine reads a variable (engine.contract.Contract.reads): the
    first DeepGEMM spelling it reads is set (None: the current one)."""
    env: dict[str, str] = {}
    wanted = set(caches)
    if "deep_gemm" in wanted:
        name = next((n for n in DEEP_GEMM_ENV if reads is None or reads(n)), DEEP_GEMM_ENV[0])
        env[name] = f"{CONTAINER_DIR}/deep_gemm"
    for cache, (name, sub) in THIRD_PARTY_ENV.items():
        if cache in wanted:
            env[name] = f"{CONTAINER_DIR}/{sub}"
    return env


def worker_cache(
    *,
    root: str,
    role: str,
    nnodes: int,
    flags: Iterable[tuple[str, Any]],
    model: str,
    image: str,
    engine: Mapping[str, str],
    caches: Iterable[str],
    reads: Any = None,
) -> dict[str, Any] | None:
    """{config, root, dir, mount, env, deep_gemm, caches, material} of one worker; None when the recipe lists no cache."""
    caches = list(caches)
    if not caches:
        return None
    material = config_material(role=role, nnodes=nnodes, flags=flags, model=model, image=image, engine=engine, caches=caches)
    config = config_digest(material)
    directory = f"{root}/{config}"
    return {
        "config": config,
        "root": root,
        "dir": directory,
        "mount": f"{directory}:{CONTAINER_DIR}:rw",
        "env": cache_env(caches, reads),
        "deep_gemm": "deep_gemm" in caches,
        "caches": caches,
        "material": material,
    }
