"""A full NVL72 rack (18 trays) on the emulated cluster: `site` from bare, then a no-op `site`.

    make bench-rack        (writes build/bench/rack.json and prints the figures; ~15-25 min here)

Topology (a rack of 18 trays): tray0 is the head (etcd, NATS, the Dynamo frontend; it also holds
the synthetic model that stage moves to the others); 2 prefill workers of 4 trays each (tray1-8)
and 3 decode workers of 3 trays each (tray9-17). The weights are the emulated inventory's
synthetic model (64 x 1 MiB), moved by the chain.

The serving image (~1 GB) is preloaded on every tray by `cluster.py up --preload-serving`, streamed
from this machine, instead of moving down the chain: the chain would put 17 archives of ~1 GB on
this machine's one disk at once (besides the 17 loaded copies), more than it has free while other
clusters run here. So "from bare" here means: fresh trays holding the control plane's and the
serving image, nothing provisioned, no weights, no kernel caches, nothing running; stage finds
the image on every tray and moves nothing (`make bench-warm-start` measures the image's chain).

  1. `cluster.py down` then `cluster.py up` with that topology: bare trays (fresh containers and
     inner Docker volumes; only the control plane's image is preloaded, the serving image and the
     model are on tray0 alone), unless --keep (use the cluster as it is: then "first" is
     whatever that cluster needs, and rack.json says so).
  2. `wideep.gb200.site` (first run), then `wideep.gb200.site` again (the no-op run: it must
     change nothing on any tray), each under ansible.posix.profile_tasks.
  3. build/bench/rack.json: trays, topology, seconds of each run, changed counts per host (every
     one must be 0 on the no-op run, or the bench exits 1), the load average before and after each
     run, and the 10 slowest tasks of each run.

--noop-only skips the first run (the cluster must be converged already). Run it on a quiet
machine and under load; the load average is recorded with each run so the two can be told apart.
Mocker figures measure the plumbing and Ansible's overhead, not GB200 performance.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / "build" / "emulated" / "cluster.json"
OUT = ROOT / "build" / "bench" / "rack.json"
LOGS = ROOT / "build" / "bench" / "rack"
# head + 2 x 4 prefill + 3 x 3 decode = 18 trays
TOPOLOGY = {"prefill_workers": 2, "prefill_nodes": 4, "decode_workers": 3, "decode_nodes": 3}
TARGET_NOOP_SECONDS = 60.0

RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)")
# profile_tasks' summary line: "<role> : <task> ------------- 12.34s"
TASK_TIME = re.compile(r"^(.+?) -{3,} (\d+\.\d+)s$")


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def cluster(*args: str) -> None:
    command = [sys.executable, str(ROOT / "emulated" / "cluster.py"), *args]
    proc = subprocess.run(command, cwd=ROOT, text=True, capture_output=True, stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        sys.exit(f"cluster.py {' '.join(args)} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}")


def recap(output: str) -> dict[str, dict[str, int]]:
    section = output.rsplit("PLAY RECAP", 1)[-1]
    rows = {}
    for line in section.splitlines():
        match = RECAP.match(line.strip())
        if match:
            keys = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")
            rows[match.group(1)] = dict(zip(keys, (int(g) for g in match.groups()[1:]), strict=True))
    return rows


def slowest(output: str, count: int = 10) -> list[dict[str, Any]]:
    """The profile_tasks summary (after the last line of '=' signs), slowest first."""
    summary = output.rsplit("=" * 40, 1)[-1]
    rows = [(float(m.group(2)), m.group(1).strip()) for m in map(TASK_TIME.match, summary.splitlines()) if m]
    return [{"task": task, "seconds": seconds} for seconds, task in sorted(rows, key=lambda r: -r[0])[:count]]


def strategy() -> dict[str, str]:
    """The strategy plugin the runs use and where it comes from (ansible.cfg, or ANSIBLE_STRATEGY to compare)."""
    command = [str(Path(sys.executable).parent / "ansible-config"), "dump", "--format", "json"]
    done = subprocess.run(command, cwd=ROOT, text=True, capture_output=True, stdin=subprocess.DEVNULL, check=True)
    setting = next(item for item in json.loads(done.stdout) if item["name"] == "DEFAULT_STRATEGY")
    return {"name": setting["value"], "origin": setting["origin"]}


def site(label: str) -> dict[str, Any]:
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "pythonpath"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_CALLBACKS_ENABLED="wideep.gb200.preload,ansible.posix.profile_tasks",  # the first as ansible.cfg says
        PROFILE_TASKS_TASK_OUTPUT_LIMIT="all",
    )
    inventories = ["-i", str(ROOT / "build" / "emulated" / "hosts.yml"), "-i", str(ROOT / "inventories" / "emulated")]
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "wideep.gb200.site", *inventories]
    before = load()
    say(f"{label}: wideep.gb200.site (load average {before[0]:.2f} {before[1]:.2f} {before[2]:.2f})")
    LOGS.mkdir(parents=True, exist_ok=True)
    log_path = LOGS / f"{label}.log"
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    # Written as it runs (tail -f it), read back when it ends.
    with log_path.open("w") as log_file:
        proc = subprocess.run(command, cwd=ROOT, env=env, text=True, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False)
    seconds = time.monotonic() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The controller's CPU (ansible-playbook, its forks and their ssh clients): unlike the wall
    # time, it hardly depends on what else loads the machine.
    controller_cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    output = log_path.read_text()
    if proc.returncode != 0:
        sys.exit(f"{label} site failed ({proc.returncode}); log: {log_path}\n{output[-4000:]}")
    hosts = recap(output)
    return {
        "seconds": round(seconds, 1),
        "controller_cpu_seconds": round(controller_cpu, 1),
        "load_average_before": before,
        "load_average_after": load(),
        "changed": {host: row["changed"] for host, row in hosts.items()},
        "tasks_ok": sum(row["ok"] for row in hosts.values()),
        "slowest_tasks": slowest(output),
        "log": str(log_path.relative_to(ROOT)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="use the running cluster as it is (no down/up)")
    parser.add_argument("--noop-only", action="store_true", help="only the no-op run (the cluster must be converged)")
    args = parser.parse_args()

    if not (args.keep or args.noop_only):
        say(f"bringing up a bare 18-tray cluster ({TOPOLOGY})")
        cluster("install-engine")
        cluster("down")
        started = time.monotonic()
        cluster("up", "--preload-serving", *(f"--{key.replace('_', '-')}={value}" for key, value in TOPOLOGY.items()))
        say(f"cluster.py up: {time.monotonic() - started:.0f} s")
    state = json.loads(STATE.read_text())
    groups: dict[str, list[str]] = {}
    for tray in state["trays"]:
        groups.setdefault(tray["group"], []).append(tray["host"])

    result: dict[str, Any] = {
        "trays": len(state["trays"]),
        "cluster": state["name"],
        "topology": groups,
        "cpus": os.cpu_count(),
        "ansible_config": os.environ.get("ANSIBLE_CONFIG", "ansible.cfg"),
        "strategy": strategy(),
        "first_run_from": None
        if args.noop_only
        else ("the running cluster (--keep)" if args.keep else "bare (cluster.py down + up --preload-serving: the serving image on every tray)"),
        "first": None if args.noop_only else site("first"),
    }
    result["noop"] = site("noop")
    changed = {host: n for host, n in result["noop"]["changed"].items() if n}
    result["noop_changed_total"] = sum(changed.values())
    result["target_noop_seconds"] = TARGET_NOOP_SECONDS
    result["engine"] = "dynamo mocker (TEST DOUBLE for SGLang): Ansible's and the plumbing's figures, not GB200 performance"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")

    say(f"rack: {result['trays']} trays: " + ", ".join(f"{g} {len(h)}" for g, h in groups.items()))
    for label in ("first", "noop"):
        run = result[label]
        if run is None:
            continue
        la = run["load_average_before"]
        say(
            f"{label:6} {run['seconds']:7.1f} s  controller CPU {run['controller_cpu_seconds']:6.1f} s  "
            f"changed {sum(run['changed'].values()):4d} on {len(run['changed'])} hosts  "
            f"load {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}"
        )
        for row in run["slowest_tasks"]:
            say(f"         {row['seconds']:7.2f} s  {row['task']}")
    say(f"written: {OUT.relative_to(ROOT)}")
    if changed:
        sys.exit(f"the no-op run changed something: {changed}")
    if result["noop"]["seconds"] >= TARGET_NOOP_SECONDS:
        say(f"note: the no-op run took {result['noop']['seconds']} s, over the {TARGET_NOOP_SECONDS:.0f} s target")


if __name__ == "__main__":
    main()
