"""The real engine parsers: one venv per (Dynamo, SGLang) pair a recipe names (scripts/engines.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = ROOT / "roles" / "preflight" / "files" / "engine_probe.py"
ENGINES = ROOT / "scripts" / "engines.py"


def pair(dynamo: str, sglang: str) -> str:
    return f"dynamo-{dynamo}+sglang-{sglang}"


@cache
def engine_python(name: str) -> str:
    """The pair's venv interpreter, built on first use and cached outside the checkout."""
    proc = subprocess.run([sys.executable, str(ENGINES), "venv", name], capture_output=True, text=True, check=False)
    if proc.returncode:
        pytest.fail(f"could not build the engine venv {name}:\n{proc.stderr[-4000:]}")
    return proc.stdout.split()[-1]


def probe(name: str, argvs: dict[str, list[str]], model_dir: Path) -> dict[str, Any]:
    """Run the preflight probe (the same file the trays run) with the pair's real parsers."""
    proc = subprocess.run(
        [engine_python(name), str(PROBE), "--parse", "-", "--model-path-override", str(model_dir)],
        input=json.dumps(argvs),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        pytest.fail(f"the probe failed under {name}:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return result
