"""How long the plan takes for large fleets: pure Python, and the whole render and validate playbooks.

make bench-plan      (prints a table; writes build/bench/plan.json)

validate and render run the same plan; validate runs it in a play over every tray (the plan is
then shared with the trays that later plays configure), render on the controller alone. The
target: validate costs no more than 1.5 x render on the same inventory, measured in one run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "build" / "pythonpath"))

from inventory_builder import build  # noqa: E402

from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.build import build_plan  # noqa: E402

# Shapes that pass validation: decode workers of 18 trays (EP 72 divides 288 experts).
SHAPES = {
    72: {"prefill": (2,) * 9, "decode": (18,) * 3},
    500: {"prefill": (2,) * 52, "decode": (18,) * 22},
}


def _inventory_yaml(groups: dict[str, list[str]], hostvars: dict[str, dict[str, Any]]) -> dict[str, Any]:
    workers = {role: {g: {"hosts": dict.fromkeys(groups[g])} for g in groups if g.startswith(role + "_")} for role in ("prefill", "decode")}
    return {
        "all": {
            "children": {
                "gb200": {
                    "hosts": {h: {"ansible_host": hostvars[h]["ansible_host"]} for h in groups["gb200"]},
                    "children": {
                        "dynamo_head": {"hosts": {groups["dynamo_head"][0]: None}},
                        "prefill": {"children": workers["prefill"]},
                        "decode": {"children": workers["decode"]},
                    },
                }
            }
        }
    }


def bench(trays: int, repeat: int = 5) -> dict[str, Any]:
    groups, hostvars = build(head_separate=False, **SHAPES[trays])
    assert len(groups["gb200"]) == trays
    times = []
    for _attempt in range(repeat):
        start = time.perf_counter()
        plan = build_plan(groups, hostvars)
        times.append(time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "hosts.yml").write_text(yaml.safe_dump(_inventory_yaml(groups, hostvars)))
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "pythonpath"), ANSIBLE_NOCOLOR="1")
        seconds: dict[str, list[float]] = {"render": [], "validate": []}
        # Alternate the two so that a burst of load on this shared machine hits both alike.
        for attempt in range(PLAYBOOK_REPEAT):
            for name in ("render", "validate"):
                start = time.perf_counter()
                subprocess.run(
                    [
                        str(Path(sys.executable).parent / "ansible-playbook"),
                        f"wideep.gb200.{name}",
                        "-i",
                        f"{tmp}/hosts.yml",
                        "-e",
                        f"gb200_render_dir={tmp}/out{attempt}",
                    ],
                    check=True,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                seconds[name].append(time.perf_counter() - start)
        scripts = len(list(Path(tmp, "out0", "hosts").glob("*.sh")))
    playbook = min(seconds["render"])
    validate = min(seconds["validate"])
    return {
        "trays": trays,
        "workers": len(plan["workers"]),
        "plan_seconds_best": min(times),
        "plan_seconds_median": sorted(times)[len(times) // 2],
        "render_playbook_seconds": playbook,
        "validate_playbook_seconds": validate,
        "validate_over_render": validate / playbook,
        "scripts_written": scripts,
    }


PLAYBOOK_REPEAT = 3


def main() -> None:
    rows = [bench(n) for n in SHAPES]
    load = os.getloadavg()[0]
    for row in rows:
        row["load_average_1min"] = load
    out = ROOT / "build" / "bench" / "plan.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(  # noqa: T201
        f"{'trays':>6} {'workers':>8} {'plan (best)':>12} {'plan (median)':>14} {'render playbook':>16} "
        f"{'validate playbook':>18} {'validate/render':>16} {'scripts':>8}"
    )
    for r in rows:
        print(  # noqa: T201
            f"{r['trays']:>6} {r['workers']:>8} {r['plan_seconds_best']:>11.3f}s {r['plan_seconds_median']:>13.3f}s"
            f" {r['render_playbook_seconds']:>15.1f}s {r['validate_playbook_seconds']:>17.1f}s {r['validate_over_render']:>16.2f} {r['scripts_written']:>8}"
        )
    print(f"best of {PLAYBOOK_REPEAT} runs each, alternated; 1-minute load average at the end: {load:.1f} on {os.cpu_count()} cores")  # noqa: T201
    print(f"written: {out.relative_to(ROOT)}")  # noqa: T201


if __name__ == "__main__":
    main()
