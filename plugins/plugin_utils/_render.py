# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Turn a plan's container specs into runnable `docker run` launch scripts, one per tray."""

from __future__ import annotations

import json
import shlex
from typing import Any


def docker_run_argv(spec: dict[str, Any]) -> list[str]:
    """The `docker run` equivalent of one container spec (what the seeds type by hand)."""
    argv = ["docker", "run", "--detach", "--name", spec["name"], "--restart", spec["restart_policy"]]
    if spec.get("gpus"):
        argv += ["--gpus", spec["gpus"]]
    argv += ["--network", spec["network_mode"]]
    if spec.get("ipc_mode"):
        argv += ["--ipc", spec["ipc_mode"]]
    if spec.get("shm_size"):
        argv += ["--shm-size", spec["shm_size"]]
    for ulimit in spec.get("ulimits", []):
        name, soft, hard = ulimit.split(":")
        argv += ["--ulimit", f"{name}={soft}:{hard}"]
    for cap in spec.get("capabilities", []):
        argv += ["--cap-add", cap]
    for volume in spec.get("volumes", []):
        argv += ["--volume", volume]
    for key, value in spec.get("labels", {}).items():
        argv += ["--label", f"{key}={value}"]
    if spec.get("working_dir"):
        argv += ["--workdir", spec["working_dir"]]
    for key, value in spec.get("env", {}).items():
        argv += ["--env", f"{key}={value}"]
    return [*argv, spec["image"], *spec["command"]]


def _lines(argv: list[str]) -> str:
    """One option (with its value) per line, so the script reads like the seed."""
    out: list[str] = []
    i = next((n for n, w in enumerate(argv) if w.startswith("-")), len(argv))
    if i:
        out.append(" ".join(shlex.quote(w) for w in argv[:i]))
    while i < len(argv):
        word = argv[i]
        group = [word]
        i += 1
        if word.startswith("-"):
            while i < len(argv) and not argv[i].startswith("-"):
                group.append(argv[i])
                i += 1
        out.append(" ".join(shlex.quote(w) for w in group))
    return " \\\n  ".join(out)


def launch_script(host: str, host_plan: dict[str, Any], plan: dict[str, Any]) -> str:
    lines = [
        "#!/usr/bin/env bash",
        f"# {host}: launch script rendered by wideep.gb200 from recipe {plan['recipe']['name']}",
        f"# ({plan['engine']} engine). Re-render instead of editing: ansible-playbook wideep.gb200.render.",
        "set -euo pipefail",
    ]
    if host_plan.get("note"):
        lines.append(f"# {host_plan['note']}")
    if not host_plan["containers"]:
        lines.append(f"echo '{host}: nothing to start on this tray'")
    for spec in host_plan["containers"]:
        lines += ["", f"# {spec['kind']}: {spec['name']}", f"docker rm --force {shlex.quote(spec['name'])} >/dev/null 2>&1 || true"]
        argv = docker_run_argv(spec)
        image_at = argv.index(spec["image"], len(argv) - len(spec["command"]) - 1)
        command = spec["command"]
        head = next((i for i, w in enumerate(command) if w.startswith("--")), len(command))
        program = " ".join(shlex.quote(w) for w in command[:head])
        rest = " \\\n  " + _lines(command[head:]) if command[head:] else ""
        lines.append(_lines(argv[:image_at]) + " \\\n  " + shlex.quote(spec["image"]) + " \\\n  " + program + rest)
    return "\n".join(lines) + "\n"


def render_files(plan: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Everything `render` writes: plan.json and one executable launch script per tray."""
    files = {"plan.json": {"content": json.dumps(plan, indent=2) + "\n", "mode": "0644"}}
    for host, host_plan in plan["hosts"].items():
        files[f"hosts/{host}.sh"] = {"content": launch_script(host, host_plan, plan), "mode": "0755"}
    return files
