# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Turn a plan's container specs into runnable `docker run` launch scripts, one per tray."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shlex
import shutil
import tempfile
from pathlib import Path
from typing import Any

# Written into every render directory: render replaces only a directory it wrote (or an empty one).
MARKER = ".wideep-render"
# plan.json names every tray, port and image; the scripts are root's to run.
PLAN_MODE, SCRIPT_MODE, DIR_MODE = "0600", "0700", 0o700


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
    if spec.get("env_file"):
        argv += ["--env-file", spec["env_file"]]
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
        lines += ["", f"# {spec['kind']}: {spec['name']}"]
        if spec.get("secret_env"):
            lines.append(
                f"# secret environment ({', '.join(spec['secret_env'])}, from gb200_secret_env) comes from {spec['env_file']}, "
                "a root-only file the serve playbook writes; it is not in this script"
            )
        lines.append(f"docker rm --force {shlex.quote(spec['name'])} >/dev/null 2>&1 || true")
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
    files = {
        MARKER: {"content": "written by ansible-playbook wideep.gb200.render; the whole directory is replaced on every render\n", "mode": PLAN_MODE},
        "plan.json": {"content": json.dumps(plan, indent=2) + "\n", "mode": PLAN_MODE},
    }
    for host, host_plan in plan["hosts"].items():
        files[f"hosts/{host}.sh"] = {"content": launch_script(host, host_plan, plan), "mode": SCRIPT_MODE}
    return files


class RenderError(Exception):
    """The render directory cannot be written (nothing was changed)."""


def _existing(dest: Path) -> dict[str, tuple[bytes, int]] | None:
    """relative path -> (content, mode) of every file under dest; None when dest does not exist."""
    if not dest.exists():
        return None
    if not dest.is_dir():
        raise RenderError(f"{dest} exists and is not a directory")
    out: dict[str, tuple[bytes, int]] = {}
    for path in dest.rglob("*"):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise RenderError(f"{path} is not a plain file or directory; render only replaces a directory it wrote")
        if path.is_file():
            out[path.relative_to(dest).as_posix()] = (path.read_bytes(), path.stat().st_mode & 0o7777)
    return out


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EPERM):
        return False
    raise RenderError(f"swapping {a} into {b}: {os.strerror(error)}")


def write_render(dest: Path, files: dict[str, dict[str, str]], check: bool = False) -> dict[str, Any]:
    """Make dest hold exactly files, all at once: built beside it, then swapped in.

    Only a directory that is absent, empty or an earlier render (it holds MARKER) is replaced,
    so a mistyped gb200_render_dir (".", a home directory) is refused instead of emptied.
    A second render of the same plan changes nothing. Returns changed/added/removed/updated.
    """
    dest = dest.absolute()
    before = _existing(dest)
    if before and MARKER not in before:
        raise RenderError(
            f"{dest} is not empty and was not written by render (no {MARKER}); render replaces its whole directory, "
            "so give gb200_render_dir a new or empty directory"
        )
    wanted = {path: (spec["content"].encode(), int(spec["mode"], 8)) for path, spec in files.items()}
    for path in wanted:
        if path.startswith("/") or ".." in Path(path).parts:
            raise RenderError(f"refusing to write {path!r} outside {dest}")
    current = before or {}
    added = sorted(set(wanted) - set(current))
    removed = sorted(set(current) - set(wanted))
    updated = sorted(p for p in set(wanted) & set(current) if wanted[p] != current[p])
    dir_mode_ok = before is None or (dest.stat().st_mode & 0o777) == DIR_MODE
    changed = bool(added or removed or updated) or not dir_mode_ok
    result = {"changed": changed, "dest": str(dest), "added": added, "removed": removed, "updated": updated, "files": len(wanted)}
    if check or not changed:
        return result
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        for path, (content, mode) in wanted.items():
            target = work / path
            target.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(target, mode)
        os.chmod(work, DIR_MODE)
        if before is None:
            os.rename(work, dest)
        elif _exchange(work, dest):
            shutil.rmtree(work)  # the old render, now at the temporary name
        else:  # two renames: a reader may find dest missing for an instant, never half-written
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old.", dir=dest.parent))
            os.rename(dest, old / "render")
            os.rename(work, dest)
            shutil.rmtree(old)
    except OSError as exc:
        raise RenderError(f"writing {dest}: {exc}; the previous render (if any) is untouched") from None
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return result
