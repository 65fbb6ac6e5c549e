# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""PRIVATE filters of the serving_image and kernel_cache roles (names start with _) over plugin_utils/stage."""

from __future__ import annotations

import tarfile
from collections.abc import Mapping, Sequence
from typing import Any

from ansible_collections.wideep.gb200.plugins.plugin_utils.stage import kernel_cache, serving_image


def image_source_problems(source: Any, image: str, trays: Sequence[str]) -> list[str]:
    return serving_image.source_problems(source, image, list(trays))


def image_distribution(
    hosts: Sequence[str], hostvars: Mapping[str, Any], var: str, source_host: str | None, image: str, controller_dir: str = ""
) -> dict[str, Any]:
    """ansible_play_hosts | _image_distribution(hostvars, registered var, source host or none, image[, controller dir]).

    {source_id, receivers, problems, ids, archive_file}; for an archive on the controller its image ID
    comes from the archive itself, so a tray that loaded it before receives nothing."""
    ids = serving_image.image_ids({h: hostvars[h].get(var) for h in hosts})
    archive_file = "image.tar"
    if source_host == "localhost":
        try:
            archive_id, archive_file = serving_image.archive_info(controller_dir)
        except (OSError, ValueError, KeyError, IndexError, tarfile.TarError) as exc:
            return {"source_id": None, "receivers": [], "problems": [f"serving_image_source.path: {exc}"], "ids": ids, "archive_file": ""}
        receivers = [h for h, i in ids.items() if i != archive_id]
        return {"source_id": archive_id, "receivers": receivers, "problems": [], "ids": ids, "archive_file": archive_file}
    return {**serving_image.distribution(ids, source_host, image), "ids": ids, "archive_file": archive_file}


def image_loaded_problems(hosts: Sequence[str], hostvars: Mapping[str, Any], var: str, source_id: str | None, image: str) -> list[str]:
    return serving_image.loaded_problems({h: hostvars[h].get(var) for h in hosts}, source_id, image)


def image_content_problems(stdout: str, image: str, requirements: Mapping[str, Any], engine: Mapping[str, str]) -> list[str]:
    return serving_image.content_problems(stdout, image, requirements, engine)


def kernel_cache_configs(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    """gb200_plan | _kernel_cache_configs: one entry per compile configuration."""
    return kernel_cache.configurations(plan)


def kernel_cache_keys(configs: Sequence[Mapping[str, Any]], plan: Mapping[str, Any], host: str, tray: Any) -> list[dict[str, Any]]:
    """configs | _kernel_cache_keys(plan, inventory_hostname, host_info result with the image and
    compute_capabilities): [{config, key}] of this tray's."""
    images = (tray or {}).get("images") or []
    image_id = str(images[0]["Id"]) if images else "absent"
    gpu = kernel_cache.gpu_of(tray)
    return [{"config": c["config"], "key": kernel_cache.key_of(c, plan, image_id, gpu)} for c in configs if host in c["trays"]]


def kernel_cache_decide(configs: Sequence[Mapping[str, Any]], hosts: Sequence[str], hostvars: Mapping[str, Any], var: str, keys_var: str) -> dict[str, Any]:
    """configs | _kernel_cache_decide(ansible_play_hosts, hostvars, info var, keys var): {decisions, wanted_keys, problems}.

    Every tray of a configuration must want the same key (same image ID, same GPUs); one that
    differs is named, since no cache could serve both."""
    held = {h: dict((hostvars[h].get(var) or {}).get("caches") or {}) for h in hosts}
    problems = []
    keys: dict[str, dict[str, Any]] = {}
    for c in configs:
        wanted = {h: next((k["key"] for k in hostvars[h].get(keys_var) or [] if k["config"] == c["config"]), None) for h in c["trays"] if h in hosts}
        distinct = {repr(sorted(k.items())) for k in wanted.values() if k is not None}
        if len(distinct) > 1:
            problems.append(
                f"configuration {c['config']} ({', '.join(c['workers'])}): its trays want different keys (image ID or GPUs differ): "
                + "; ".join(f"{h}: image {str(k['image_id'])[7:19]}, GPUs {k['gpu']}" for h, k in wanted.items() if k)
                + ": run wideep.gb200.stage's serving_image first, and keep a worker's trays on one GPU model"
            )
        keys[c["config"]] = next((k for k in wanted.values() if k is not None), {})
    missing = [h for c in configs for h in c["trays"] if h not in hosts]
    if missing:
        problems.append(
            f"trays of the plan are not in this play (unreachable or --limit): {', '.join(sorted(set(missing)))}: "
            "a cache is staged on every tray of its configuration or none"
        )
    return {"decisions": kernel_cache.decide(configs, held), "wanted_keys": keys, "problems": problems}


def kernel_cache_compile_job(
    decisions: Sequence[Mapping[str, Any]],
    host: str,
    plan: Mapping[str, Any],
    keys: Mapping[str, Any],
    root: str,
    command: Sequence[str],
    env: Mapping[str, str],
) -> dict[str, Any]:
    """decisions | _kernel_cache_compile_job(inventory_hostname, plan, keys, root, command, env).

    This tray's compile ({} when it compiles nothing)."""
    for d in decisions:
        if d["action"] == "compile" and host in d["compile_hosts"]:
            return {
                "config": d["config"],
                "key": keys[d["config"]],
                "deep_gemm": d["deep_gemm"],
                **kernel_cache.compile_argv(plan, d, host, root, command, env),
            }
    return {}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "_image_source_problems": image_source_problems,
            "_image_distribution": image_distribution,
            "_image_loaded_problems": image_loaded_problems,
            "_image_content_problems": image_content_problems,
            "_kernel_cache_configs": kernel_cache_configs,
            "_kernel_cache_keys": kernel_cache_keys,
            "_kernel_cache_decide": kernel_cache_decide,
            "_kernel_cache_compile_job": kernel_cache_compile_job,
        }
