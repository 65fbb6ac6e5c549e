"""What one task costs the controller, whatever the task does: the floor under a rack's no-op run.

    make bench-task-cost     (needs a running emulated cluster: `make cluster` or `make bench-rack`)

Runs, against every tray of the emulated cluster's inventory (build/emulated/hosts.yml), three
plays of this file's own making, each several times:

  empty    a play with no task (ansible-playbook's start, the inventory, the play itself);
  skipped  TASKS tasks, each skipped by `when` (no module, no connection: only Ansible's worker
           process per task and host, and the condition);
  module   TASKS tasks that each run ansible.builtin.command `true` on every tray.

For each: wall seconds and the controller's CPU seconds (ansible-playbook, its forks and their ssh
clients: RUSAGE_CHILDREN), and per task and host: (CPU of the play - CPU of the empty play) /
(TASKS x hosts). Writes build/bench/task_cost.json and prints a table. docs/rack.md uses the
`skipped` figure: a no-op run of N task results cannot cost the controller less than N times it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
INVENTORY = ROOT / "build" / "emulated" / "hosts.yml"
OUT = ROOT / "build" / "bench" / "task_cost.json"


def playbook(kind: str, tasks: int) -> list[dict[str, Any]]:
    if kind == "empty":
        body: list[dict[str, Any]] = []
    elif kind == "skipped":
        body = [{"name": f"skipped {i}", "ansible.builtin.debug": {"msg": "never"}, "when": "__task_cost_never | default(false)"} for i in range(tasks)]
    else:
        body = [{"name": f"module {i}", "ansible.builtin.command": {"argv": ["true"]}, "changed_when": False} for i in range(tasks)]
    return [{"name": f"task cost: {kind}", "hosts": "gb200", "gather_facts": False, "tasks": body}]


def run(path: Path) -> tuple[float, float]:
    env = dict(os.environ, ANSIBLE_NOCOLOR="1")
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(INVENTORY), str(path)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(command, cwd=ROOT, env=env, text=True, capture_output=True, stdin=subprocess.DEVNULL, check=False)
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{path.name} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=40, help="tasks per play (default 40)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each play (default 2)")
    args = parser.parse_args()
    if not INVENTORY.exists():
        sys.exit(f"no emulated cluster: {INVENTORY} is missing (make cluster, or make bench-rack)")
    hosts = sorted(yaml.safe_load(INVENTORY.read_text())["all"]["children"]["gb200"].get("hosts") or {})
    load = list(os.getloadavg())
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="wideep-task-cost-") as tmp:
        for kind in ("empty", "skipped", "module"):
            path = Path(tmp) / f"{kind}.yml"
            path.write_text(yaml.safe_dump(playbook(kind, args.tasks), sort_keys=False))
            runs = [run(path) for attempt in range(args.repeat)]
            rows[kind] = {"seconds": [round(wall, 2) for wall, cpu in runs], "controller_cpu_seconds": [round(cpu, 2) for wall, cpu in runs]}
    empty_cpu = statistics.mean(rows["empty"]["controller_cpu_seconds"])
    results = len(hosts) * args.tasks
    for kind in ("skipped", "module"):
        per = [(cpu - empty_cpu) / results * 1000 for cpu in rows[kind]["controller_cpu_seconds"]]
        rows[kind]["ms_cpu_per_task_and_host"] = [round(p, 1) for p in per]
    report = {
        "hosts": len(hosts),
        "tasks": args.tasks,
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "load_average_before": load,
        "load_average_after": list(os.getloadavg()),
        **rows,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    sys.stdout.write(f"{len(hosts)} hosts, {args.tasks} tasks per play, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    for kind in ("empty", "skipped", "module"):
        row = rows[kind]
        per = row.get("ms_cpu_per_task_and_host")
        extra = f"  {', '.join(f'{p:.1f}' for p in per)} ms controller CPU per task and host" if per else ""
        walls = ", ".join(f"{s:.1f}" for s in row["seconds"])
        cpus = ", ".join(f"{c:.1f}" for c in row["controller_cpu_seconds"])
        sys.stdout.write(f"{kind:8s} wall {walls} s  controller CPU {cpus} s{extra}\n")
    sys.stdout.write(f"written: {OUT.relative_to(ROOT)}\n")


if __name__ == "__main__":
    main()
