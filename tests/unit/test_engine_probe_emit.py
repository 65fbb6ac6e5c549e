# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""roles/preflight/files/engine_probe.py writes its whole answer, whatever write(2) does.

Found by the contract tier (CI, 2026-12-02): under PYTHONUNBUFFERED stdout has no buffer to retry
a short write, and after Dynamo 1.6.1's parse a write to a slow pipe came back after 64 KiB of a
100 KiB answer; the rest was lost and the probe still exited 0. Here write(2) is made short, and
once refused (a non-blocking stdout), on purpose.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import pytest

PROBE = Path(__file__).resolve().parents[2] / "roles" / "preflight" / "files" / "engine_probe.py"


def _probe() -> Any:
    spec = importlib.util.spec_from_file_location("engine_probe_under_test", PROBE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_short_or_refused_write_is_retried_until_every_byte_is_out(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = _probe()
    answer = json.dumps({"parsed": {f"case {i}": {"ok": True, "error": None, "warnings": []} for i in range(3000)}}) + "\n"
    assert len(answer) > 2 * 65536
    out = bytearray()
    calls = {"n": 0}

    def short_write(fd: int, data: Any) -> int:
        assert fd == 1
        calls["n"] += 1
        if calls["n"] == 2:
            raise BlockingIOError
        take = bytes(data[: 65536 if calls["n"] == 1 else 4000])
        out.extend(take)
        return len(take)

    waited = []
    monkeypatch.setattr(probe.os, "write", short_write)
    monkeypatch.setattr(probe.select, "select", lambda r, w, x: waited.append(w) or (r, w, x))
    probe.emit(answer)
    assert out.decode() == answer
    assert waited == [[1]]


def test_the_probe_prints_one_whole_json_line_through_a_pipe(tmp_path: Path) -> None:
    """No engine installed: versions are null and nothing is parsed, but the answer is the same line."""
    import subprocess
    import sys

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    done = subprocess.run([sys.executable, str(PROBE)], capture_output=True, text=True, check=True, env=env, cwd=tmp_path)
    assert json.loads(done.stdout.splitlines()[-1]) == {"versions": {"sglang": None, "ai-dynamo": None, "ai-dynamo-runtime": None}}
