"""The Python API runs the real playbooks through ansible-runner and returns typed results."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))

from wideep_gb200 import Progress, run  # noqa: E402


def test_validate_example_inventory_streams_progress_and_succeeds() -> None:
    seen: list[Progress] = []
    result = run("validate", [ROOT / "inventories" / "gb200"], {"gb200_recipe": "dsr1-fp8-wideep"}, on_progress=seen.append)
    assert result.ok, result.failures
    assert not result.changed
    assert set(result.stats) >= {"gb200-head"}
    assert any(p.kind == "task" and "plan" in p.task for p in seen)
    assert any("W-ENV-NOOP" in w for w in result.warnings)


def test_invalid_input_returns_every_plan_problem(tmp_path: Path) -> None:
    result = run(
        "render",
        [ROOT / "inventories" / "gb200"],
        {"gb200_render_dir": str(tmp_path / "out"), "gb200_prefill_args": {"tp-size": 5}, "gb200_decode_args": {"node-rank": 1}},
    )
    assert not result.ok
    codes = {p.code for p in result.plan_problems}
    assert {"E-TP-NODES", "E-DEEPEP-EP", "E-OWNED-FLAG"} <= codes
    assert all(p.fix for p in result.plan_problems)
    assert not (tmp_path / "out").exists()


def test_a_bad_value_is_refused_by_the_plan_with_its_fix(tmp_path: Path) -> None:
    result = run("render", [ROOT / "inventories" / "gb200"], {"gb200_render_dir": str(tmp_path / "out"), "gb200_engine": "vllm"})
    assert not result.ok
    assert "[E-BAD-ENGINE] inventory: gb200_engine: 'vllm' is not an engine. Fix: use one of: sglang, mocker" in result.failures[0].message
    assert not (tmp_path / "out").exists()
