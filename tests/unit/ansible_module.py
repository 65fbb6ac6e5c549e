"""Run one of the collection's modules on localhost through the real `ansible` command (json callback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_module(module: str, args: str, *flags: str, path_prefix: Path | None = None, timeout: float = 300) -> tuple[int, dict[str, Any], str]:
    """(ansible's exit code, the module's result for localhost, all output) of `ansible localhost -m wideep.gb200.MODULE -a ARGS`."""
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "pythonpath"),
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="true",
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
    )
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}:{env['PATH']}"
    command = [str(Path(sys.executable).parent / "ansible"), "localhost", "-c", "local", "-m", f"wideep.gb200.{module}", "-a", args, *flags]
    done = subprocess.run(command, env=env, text=True, capture_output=True, check=False, cwd=ROOT, timeout=timeout)
    output = done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout[done.stdout.find("{") :])["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return done.returncode, result, output
