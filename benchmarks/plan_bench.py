"""How long the plan takes for large fleets: pure Python and the whole render playbook.

make bench-plan      (prints a table; writes build/bench/plan.json)
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

from ansible_collections.wideep.gb200.plugins.plugin_utils._plan import build_plan  # noqa: E402

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
        start = time.perf_counter()
        subprocess.run(
            [str(Path(sys.executable).parent / "ansible-playbook"), "wideep.gb200.render", "-i", f"{tmp}/hosts.yml", "-e", f"gb200_render_dir={tmp}/out"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        playbook = time.perf_counter() - start
        scripts = len(list(Path(tmp, "out", "hosts").glob("*.sh")))
    return {
        "trays": trays,
        "workers": len(plan["workers"]),
        "plan_seconds_best": min(times),
        "plan_seconds_median": sorted(times)[len(times) // 2],
        "render_playbook_seconds": playbook,
        "scripts_written": scripts,
    }


def main() -> None:
    rows = [bench(n) for n in SHAPES]
    out = ROOT / "build" / "bench" / "plan.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"{'trays':>6} {'workers':>8} {'plan (best)':>12} {'plan (median)':>14} {'render playbook':>16} {'scripts':>8}")  # noqa: T201
    for r in rows:
        print(  # noqa: T201
            f"{r['trays']:>6} {r['workers']:>8} {r['plan_seconds_best']:>11.3f}s {r['plan_seconds_median']:>13.3f}s"
            f" {r['render_playbook_seconds']:>15.1f}s {r['scripts_written']:>8}"
        )
    print(f"written: {out.relative_to(ROOT)}")  # noqa: T201


if __name__ == "__main__":
    main()
