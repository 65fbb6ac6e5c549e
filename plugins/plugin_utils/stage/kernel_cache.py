# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""The kernel_cache role's decisions: one compile per configuration, on which trays, and who receives it.

The plan groups workers by compile configuration (plan/kernel_cache.py). Here, with what each tray
holds (kernel_cache_info) and the key wanted now, each configuration gets one of:
  ready    every tray of it holds a complete cache for the key: nothing runs;
  fanout   some tray holds it: the others receive it through the chain;
  compile  none holds it: the trays of its first worker compile it (SGLang's compile_deep_gemm is
           a multi-node server for a multi-tray worker, each tray with its --node-rank), then the
           others receive it;
  skip     the recipe's path runs no DeepGEMM and no tray holds a cache: nothing to precompile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..plan.kernel_cache import CONTAINER_DIR
from ..plan.render import docker_run_argv


def configurations(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One entry per distinct configuration, in the order of the plan's workers."""
    out: dict[str, dict[str, Any]] = {}
    for worker in plan.get("workers", []):
        cache = worker.get("kernel_cache")
        if not cache:
            continue
        entry = out.setdefault(
            cache["config"],
            {
                "config": cache["config"],
                "root": cache["root"],
                "dir": cache["dir"],
                "deep_gemm": cache["deep_gemm"],
                "caches": cache["caches"],
                "workers": [],
                "trays": [],
                "compile_hosts": list(worker["hosts"]),
                "compile_argv": dict(cache["compile_argv"]),
                "first_worker": worker["name"],
            },
        )
        entry["workers"].append(worker["name"])
        entry["trays"] += [h for h in worker["hosts"] if h not in entry["trays"]]
    return list(out.values())


def key_of(config: Mapping[str, Any], plan: Mapping[str, Any], image_id: str, gpu: str) -> dict[str, str]:
    """The full key a cache is complete for (KEY.json's `key`)."""
    engine = plan.get("engine_versions", {})
    return {
        "config": str(config["config"]),
        "image": str(plan.get("image", "")),
        "image_id": image_id,
        "gpu": gpu,
        "sglang": str(engine.get("sglang", "")),
        "dynamo": str(engine.get("dynamo", "")),
    }


def gpu_of(info: Mapping[str, Any] | None) -> str:
    """The GPUs' compute capability ('10.0'; '9.0+10.0' when mixed; 'none' without GPUs), from
    host_info's compute_capabilities (uuid -> '10.0') or gpu_info's gpus[].compute_capability."""
    info = info or {}
    caps = {str(c) for c in (info.get("compute_capabilities") or {}).values() if c}
    caps |= {str(g.get("compute_capability")) for g in info.get("gpus") or [] if g.get("compute_capability")}
    return "+".join(sorted(caps)) if caps else "none"


def decide(configs: Sequence[Mapping[str, Any]], held: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What happens to each configuration; held: host -> kernel_cache_info's `caches`."""
    out = []
    for c in configs:
        states = {h: (held.get(h) or {}).get(c["config"], {}).get("state", "absent") for h in c["trays"]}
        holders = [h for h in c["trays"] if states[h] == "complete"]
        lacking = [h for h in c["trays"] if states[h] != "complete"]
        if not lacking:
            action, source, why = "ready", holders[0], f"all {len(holders)} tray(s) hold it"
        elif holders:
            action, source, why = "fanout", holders[0], f"{holders[0]} holds it; {', '.join(lacking)} receive it"
        elif not c["deep_gemm"]:
            why = "the recipe's path runs no DeepGEMM: nothing to precompile (its Triton/FlashInfer kernels are built by the workers)"
            action, source = "skip", None
        else:
            action, source, why = "compile", c["compile_hosts"][0], f"no tray holds it: {', '.join(c['compile_hosts'])} ({c['first_worker']}) compile it"
        out.append({**c, "action": action, "source": source, "why": why, "states": states, "lacking": lacking})
    return out


def compile_argv(
    plan: Mapping[str, Any],
    config: Mapping[str, Any],
    host: str,
    root: str,
    command: Sequence[str],
    extra_env: Mapping[str, str],
) -> dict[str, Any]:
    """{container_name, docker_argv} of one compile host: the worker's container of rank 0 (image,
    GPUs, IPC, shm, ulimits, model and cache mounts, env) running the compile command with this
    tray's rank's SGLang flags, its cache volume on the staging directory, removed when it exits."""
    hosts = config["compile_hosts"]
    rank = hosts.index(host)
    head = plan["hosts"][hosts[0]]
    spec = next(c for c in head["containers"] if c.get("kind") == "worker")
    name = f"wideep-kernel-compile-{config['config']}"
    staging = f"{root}/.staging/{config['config']}"
    volumes = [f"{staging}:{CONTAINER_DIR}:rw" if v.split(":")[1] == CONTAINER_DIR else v for v in spec["volumes"]]
    compile_spec = {
        **spec,
        "name": name,
        "restart_policy": "no",
        "volumes": volumes,
        "env": {**spec["env"], **extra_env},
        "env_file": None,  # the secrets are not needed to compile from local weights
        "labels": {"kind": "kernel-compile", "config": str(config["config"]), "rank": str(rank)},
        "working_dir": None,
        "command": [*command, *config["compile_argv"][str(rank)]],
    }
    argv = docker_run_argv(compile_spec)
    # docker_run_argv starts a service (--detach --restart ...); a compile runs in the foreground and goes.
    argv = [a for a in argv if a != "--detach"]
    i = argv.index("--restart")
    argv[i : i + 2] = ["--rm"]
    return {"container_name": name, "docker_argv": argv}
