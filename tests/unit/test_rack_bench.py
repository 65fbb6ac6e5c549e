"""benchmarks/rack_bench.py without a cluster: what it reads from ansible-playbook's output (the
PLAY RECAP's changed counts per host, profile_tasks' slowest tasks), on output in Ansible's format."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("rack_bench", ROOT / "benchmarks" / "rack_bench.py")
assert _spec is not None and _spec.loader is not None
rack_bench = importlib.util.module_from_spec(_spec)
sys.modules["rack_bench"] = rack_bench
_spec.loader.exec_module(rack_bench)

# The end of a site run under ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks (ansible-core 2.19).
OUTPUT = """\
TASK [wideep.gb200.smoke : Report] *********************************************
ok: [tray0] =>
  msg: 'smoke: ok=2, changed=7 tokens'

PLAY RECAP *********************************************************************
localhost                  : ok=1    changed=0    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
tray0                      : ok=120  changed=3    unreachable=0    failed=0    skipped=40   rescued=0    ignored=0
tray17                     : ok=98   changed=0    unreachable=0    failed=0    skipped=51   rescued=0    ignored=0

Tuesday 01 December 2026  04:50:01 +0000 (0:00:00.512)       0:09:12.345 ******
===============================================================================
wideep.gb200.rdma : Install the RDMA user space ------------------------ 27.36s
Gathering Facts --------------------------------------------------------- 10.15s
wideep.gb200.container_runtime : Install Docker ------------------------ 29.28s
wideep.gb200.imex : List the trays of this tray's NVLink domain ---------- 0.92s
"""


def test_the_recap_gives_the_changed_count_of_every_host() -> None:
    rows = rack_bench.recap(OUTPUT)
    assert {host: row["changed"] for host, row in rows.items()} == {"localhost": 0, "tray0": 3, "tray17": 0}
    assert rows["tray17"]["skipped"] == 51 and rows["tray0"]["ok"] == 120


def test_the_slowest_tasks_come_from_the_profile_summary_slowest_first() -> None:
    rows = rack_bench.slowest(OUTPUT, count=3)
    assert rows == [
        {"task": "wideep.gb200.container_runtime : Install Docker", "seconds": 29.28},
        {"task": "wideep.gb200.rdma : Install the RDMA user space", "seconds": 27.36},
        {"task": "Gathering Facts", "seconds": 10.15},
    ]


def test_a_run_without_a_profile_summary_has_no_slowest_tasks() -> None:
    assert rack_bench.slowest("PLAY RECAP ****\ntray0 : ok=1 changed=0\n") == []
