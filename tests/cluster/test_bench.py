"""wideep.gb200.bench on the emulated cluster: a real aiperf against the real Dynamo frontend.

The engine is Dynamo's mocker: the figures measure the plumbing, not GB200 performance. What is
checked is that a sweep leaves results and plots a user can put in a report, and that the
validity gate refuses a deployment that does not return the tokens asked for.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cluster_helpers import ROOT, run_playbook

from ansible_collections.wideep.gb200.plugins.plugin_utils.bench import results
from ansible_collections.wideep.gb200.plugins.plugin_utils.bench.gate import Limits
from ansible_collections.wideep.gb200.plugins.plugin_utils.bench.records import read_records
from ansible_collections.wideep.gb200.plugins.plugin_utils.bench.report import point_row
from ansible_collections.wideep.gb200.plugins.plugin_utils.bench.results import plan_hash, read_csv_rows
from ansible_collections.wideep.gb200.plugins.plugin_utils.bench.sweep import Point

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SWEEP = {"isl": 128, "osl": 32, "concurrency": [1, 4, 8]}


@pytest.fixture(scope="module")
def aiperf() -> str:
    """The aiperf 0.13.0 executable of the cached venv (scripts/aiperf_venv.sh builds it once per machine)."""
    proc = subprocess.run([str(ROOT / "scripts" / "aiperf_venv.sh")], capture_output=True, text=True, timeout=1800, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def bench(aiperf: str, dest: Path, sweep: dict[str, Any], *extra: str) -> Any:
    return run_playbook("bench", "-e", f"bench_aiperf={aiperf}", "-e", f"bench_dir={dest}", "-e", json.dumps({"bench_sweep": sweep}), *extra)


def recorded_results(dest: Path) -> Path:
    """A second result set to compare with: the unit tests' recorded aiperf run (one point)."""
    fixture = ROOT / "tests" / "unit" / "fixtures" / "aiperf-0.13.0" / "isl256-osl32-c4"
    point = Point(index=1, isl=256, osl=32, concurrency=4, requests=16, warmup=0)
    plan = {"recipe": {"name": "recorded"}, "engine": "mocker", "workers": []}
    rows = [point_row(point, read_records(fixture), {"total": 16, "prefill": 8, "decode": 8}, Limits())]
    results.write(dest, results.document(results.deployment(plan), rows, aiperf="0.13.0", complete=True))
    return dest


def test_a_sweep_leaves_results_and_plots(aiperf: str, plan: dict[str, Any], tmp_path: Path) -> None:
    other = recorded_results(tmp_path / "recorded")
    dest = tmp_path / "sweep"
    run = bench(aiperf, dest, SWEEP, "-e", f"bench_compare_with={other}")
    assert run.rc == 0, run.describe()
    for k in (1, 2, 3):
        assert f"point {k} of 3: isl128-osl32-c" in run.output, run.describe()
    assert "not GB200 performance" in " ".join(run.output.split())  # the callback folds long lines

    doc = json.loads((dest / "results.json").read_text())
    assert doc["valid"] is True and doc["complete"] is True, doc["problems"]
    assert doc["deployment"]["engine"] == "mocker" and "not GB200 performance" in doc["note"]
    points = doc["points"]
    assert [p["concurrency"] for p in points] == [1, 4, 8]
    for p in points:
        assert p["completed"] == p["requests"] and p["errors"] == 0
        assert p["output_tokens_per_request"] == 32
        assert p["tput_per_gpu"] > 0 and p["interactivity"] > 0 and p["ttft_ms_p90"] > 0
    # The shape of a serving curve: more requests in flight, more tokens/s in all.
    assert points[2]["total_tps"] > 2 * points[0]["total_tps"], [p["total_tps"] for p in points]

    rows = read_csv_rows(dest / "results.csv")
    assert [r["name"] for r in rows] == [p["name"] for p in points]
    assert {r["plan_hash"] for r in rows} == {doc["deployment"]["plan_hash"]}
    # The hash is the plan's: the same as the plan that render writes for this inventory.
    assert doc["deployment"]["plan_hash"] == plan_hash(plan)

    manifest = json.loads((dest / "plots.json").read_text())
    for name in ("pareto.png", "ttft_p90.png"):
        assert (dest / name).read_bytes()[:8] == PNG_MAGIC, name
        assert manifest["plots"][name] == [{"series": "isl 128 / osl 32", "points": 3}]

    # bench_compare_with: the recorded set (A) and this one (B) on the same axes.
    compared = json.loads((dest / "compare" / "compare.json").read_text())
    for name in ("compare_pareto.png", "compare_ttft_p90.png"):
        assert (dest / "compare" / name).read_bytes()[:8] == PNG_MAGIC, name
        assert [(s["series"][:2], s["points"]) for s in compared["plots"][name]] == [("A ", 1), ("B ", 3)]


def test_a_deployment_that_does_not_return_the_tokens_asked_is_refused(aiperf: str, tmp_path: Path) -> None:
    """Mockers whose context ends 8 tokens after the prompt: every request stops after a few of
    the 64 tokens asked (Dynamo answers 200 and counts them). aiperf exits 0; the gate refuses."""
    short = json.dumps({"gb200_mocker_args": {"kv-bytes-per-token": 70272, "max-model-len": 72}})
    try:
        deployed = run_playbook("serve", "-e", short)
        assert deployed.rc == 0, deployed.describe()
        run = bench(aiperf, tmp_path, {"isl": 61, "osl": 64, "concurrency": [2, 4]})
        assert run.rc != 0, run.describe()
        assert "the benchmark is refused: isl61-osl64-c2:" in " ".join(run.output.split()), run.describe()
        doc = json.loads((tmp_path / "results.json").read_text())
        assert doc["valid"] is False and doc["complete"] is False
        # Stopped at the first refused point, with its results and plots written.
        assert [p["name"] for p in doc["points"]] == ["isl61-osl64-c2"]
        (problem,) = doc["problems"]
        assert problem.startswith("isl61-osl64-c2: "), problem
        assert "64 were asked" in problem or "error rate" in problem, problem
        assert (tmp_path / "pareto.png").read_bytes()[:8] == PNG_MAGIC
    finally:
        restored = run_playbook("serve")
        assert restored.rc == 0, restored.describe()
