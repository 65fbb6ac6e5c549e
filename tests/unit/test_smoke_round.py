"""The smoke round's failure for workers that are not running: one run_once task for all trays, its
message made from every tray's registered `docker logs` results (no set_fact per tray).

The task is taken as it is from roles/smoke/tasks/round.yml and run by ansible-playbook on two
local hosts whose registered results are set as the round's log task registers them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from ansible_module import ROOT

SECRET = "hf_smoke_round_SECRET_51d0"


def logs_result(name: str, state: dict[str, Any] | None, lines: list[str] | None) -> dict[str, Any]:
    """One item of the loop's registered results: skipped (running) or the container's last lines."""
    item: dict[str, Any] = {"item": {"key": name, "value": state}}
    if lines is None:
        item["skipped"] = True
    else:
        item.update(stdout_lines=lines, stderr_lines=[], rc=0)
    return item


def test_one_message_names_every_dead_worker_of_every_tray_scrubbed(tmp_path: Path) -> None:
    round_tasks = yaml.safe_load((ROOT / "roles/smoke/tasks/round.yml").read_text())
    fail = next(task for task in round_tasks if task["name"] == "Fail when a worker is not running")
    registered = {
        "t1": [logs_result("wideep-prefill-0", {"Running": True, "Status": "running"}, None)],
        "t2": [
            logs_result("wideep-decode-0", {"Running": False, "Status": "exited", "ExitCode": 1}, ["bind: Address already in use", f"token {SECRET}"]),
            logs_result("wideep-decode-1", None, []),
        ],
    }
    play = [
        {
            "hosts": "t1,t2",
            "gather_facts": False,
            "vars": {"gb200_secret_env": {"HF_TOKEN": SECRET}},
            "tasks": [
                {
                    "name": "Registered as the round registers it",
                    "ansible.builtin.set_fact": {"smoke_logs": {"results": "{{ __registered[inventory_hostname] }}"}},
                    "vars": {"__registered": registered},
                },
                fail,
            ],
        }
    ]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "pythonpath"), ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false")
    command = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i",
        "t1,t2,",
        "-c",
        "local",
        "-e",
        f"ansible_python_interpreter={sys.executable}",
        str(tmp_path / "play.yml"),
    ]
    done = subprocess.run(command, env=env, text=True, capture_output=True, check=False, cwd=ROOT, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "t2: worker container wideep-decode-0 is exited (exit code 1); its last log lines:" in out
    assert "bind: Address already in use" in out
    assert "t2: worker container wideep-decode-1 is missing (exit code n/a)" in out
    assert "wideep-prefill-0" not in out.split("TASK [Fail when a worker is not running]")[1]
    assert SECRET not in out.split("TASK [Fail when a worker is not running]")[1]
    # one failure for all trays (run_once), not one per tray
    assert out.count("fatal: [") == 1, out

    for host in registered:
        registered[host] = [logs_result("w", {"Running": True}, None)]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    done = subprocess.run(command, env=env, text=True, capture_output=True, check=False, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
