# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""/etc/docker/daemon.json: merge the NVIDIA settings into what is already there, never overwrite it.

PRIVATE to the collection: may change at any time. Used by the container_runtime role.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

MODES = ("runtime", "cdi")
NVIDIA_RUNTIME = "nvidia"


class DaemonJsonError(ValueError):
    """The existing daemon.json cannot be merged into (not JSON, not an object)."""


def parse_daemon_json(text: str | None, path: str = "/etc/docker/daemon.json") -> dict[str, Any]:
    """The existing configuration; a missing or blank file is an empty one."""
    if text is None or not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DaemonJsonError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); dockerd would not start with it either. "
            "Fix or remove it: this role merges into it and never overwrites it."
        ) from None
    if not isinstance(data, dict):
        raise DaemonJsonError(f"{path} holds a JSON {type(data).__name__}, not an object; fix or remove it")
    return data


def merge(base: Mapping[str, Any], updates: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: objects merge key by key, anything else replaces; a value of None deletes the key.

    Keys keep their order in `base` (new ones follow), so a merged file differs from the
    original only where it has to.
    """
    out = copy.deepcopy(dict(base))
    for key, value in updates.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        elif isinstance(value, Mapping):
            out[key] = merge({}, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def nvidia_settings(existing: Mapping[str, Any], mode: str, default_runtime: bool, runtime_path: str) -> dict[str, Any]:
    """The daemon.json updates (None = delete) for the NVIDIA container toolkit in `mode`.

    runtime: register the nvidia runtime as `nvidia-ctk runtime configure --runtime=docker` does
             (path + empty args), optionally as the default runtime.
    cdi:     enable Docker's CDI support (Docker >= 25) and drop the runtime this role registered.
    A default-runtime other than "nvidia" is the user's and is left alone in both modes.
    """
    if mode not in MODES:
        raise ValueError(f"nvidia mode must be one of {', '.join(MODES)}, not {mode!r}")
    is_ours = existing.get("default-runtime") == NVIDIA_RUNTIME
    if mode == "runtime":
        updates: dict[str, Any] = {"runtimes": {NVIDIA_RUNTIME: {"path": runtime_path, "args": []}}}
        if default_runtime:
            updates["default-runtime"] = NVIDIA_RUNTIME
        elif is_ours:
            updates["default-runtime"] = None
        return updates
    updates = {"features": {"cdi": True}, "runtimes": {NVIDIA_RUNTIME: None}}
    if is_ours:
        updates["default-runtime"] = None
    return updates


def daemon_json(
    existing_text: str | None,
    mode: str,
    default_runtime: bool = False,
    runtime_path: str = "nvidia-container-runtime",
    options: Mapping[str, Any] | None = None,
    path: str = "/etc/docker/daemon.json",
) -> dict[str, Any]:
    """The merged daemon.json: {"config": dict, "content": str, "changed": bool}.

    `options` (user settings, e.g. {"data-root": "/raid/docker"}) are merged last, so an explicit
    user value wins over the NVIDIA settings. `changed` compares parsed JSON, so a file that
    already holds the same settings in other formatting is not rewritten.
    """
    existing = parse_daemon_json(existing_text, path)
    merged = merge(existing, nvidia_settings(existing, mode, default_runtime, runtime_path))
    merged = merge(merged, options or {})
    # An empty `runtimes` left behind by removing ours means nothing to dockerd: drop it.
    if merged.get("runtimes") == {} and existing.get("runtimes") != {}:
        merged.pop("runtimes")
    return {
        "config": merged,
        "content": json.dumps(merged, indent=2) + "\n",
        "changed": merged != existing,
    }
