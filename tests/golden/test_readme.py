"""The README's commands work as pasted: every bash and python block that needs no trays is run.

A block is skipped only when the line above its fence says why:
`<!-- not run by tests/golden/test_readme.py: REASON -->` (the test suite itself, real trays).
They run from the repository root with no ANSIBLE_* variable set, as a user's shell would.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIP = re.compile(r"<!-- not run by tests/golden/test_readme\.py: (.+?) -->")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[str, str, str, str | None]]:
    """(id, language, code, reason it is skipped or None) of every fenced block."""
    text = (ROOT / "README.md").read_text()
    out = []
    for match in FENCE.finditer(text):
        language, code = match.group(1), match.group(2)
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip().splitlines()[-1:] or [""]
        skipped = SKIP.search(before[0])
        out.append((f"README.md:{line}", language, code, skipped.group(1) if skipped else None))
    return out


RUNNABLE = [(i, lang, code) for i, lang, code, why in blocks() if lang in ("bash", "python") and why is None]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k != "VIRTUAL_ENV"}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    return env


def test_every_shell_block_is_run_or_says_why_not() -> None:
    languages = {lang for _i, lang, _code, why in blocks() if why is None}
    assert languages <= {"bash", "python", "yaml", ""}, languages
    assert len(RUNNABLE) >= 2


@pytest.mark.parametrize(("where", "language", "code"), RUNNABLE, ids=[r[0] for r in RUNNABLE])
def test_readme_block_runs_as_pasted(where: str, language: str, code: str) -> None:
    if language == "bash":
        command = ["bash", "-euo", "pipefail", "-c", code]
    else:
        command = [str(ROOT / ".venv" / "bin" / "python"), "-c", code]
    done = subprocess.run(command, cwd=ROOT, env=_env(), text=True, capture_output=True, timeout=600, check=False)
    assert done.returncode == 0, f"{where} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "[ERROR]" not in done.stdout + done.stderr


def test_the_yaml_examples_are_valid_yaml() -> None:
    import yaml

    for where, language, code, _why in blocks():
        if language == "yaml":
            assert isinstance(yaml.safe_load(code), dict), where
