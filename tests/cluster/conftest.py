"""Fixtures for the emulated-cluster tests: the trays over SSH (testinfra), the plan.

molecule's testinfra verifier runs these (molecule/cluster, `make cluster-test`) after the
scenario converged the cluster that `python3 emulated/cluster.py up` started. By hand, with the
cluster up and converged (`make demo`): `.venv/bin/pytest tests/cluster` (it ends with teardown).

The tests change the cluster (re-serve, kill a worker, teardown), so they run in the order of
their names, test_01_... to test_11_...: `pytest_collection_modifyitems` below sorts them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import testinfra
from cluster_helpers import EMULATED_GROUP_VARS, EMULATED_HOSTS, ROOT, Tray, ansible_env, run_playbook, tool

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run this directory's tests in the order of their names; other tests keep their places."""
    slots = [i for i, item in enumerate(items) if Path(str(item.path)).resolve().parent == _HERE]
    ordered = sorted((items[i] for i in slots), key=lambda item: item.name)
    for slot, item in zip(slots, ordered, strict=True):
        items[slot] = item


@pytest.fixture(scope="session")
def inventory() -> dict[str, Any]:
    """`ansible-inventory --list` of the emulated cluster (hosts.yml + inventories/emulated)."""
    assert EMULATED_HOSTS.is_file(), f"{EMULATED_HOSTS} missing: run `python3 emulated/cluster.py up` (or molecule create -s cluster)"
    proc = subprocess.run(
        [tool("ansible-inventory"), "-i", str(EMULATED_HOSTS), "-i", str(EMULATED_GROUP_VARS), "--list"],
        cwd=ROOT,
        env=ansible_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


@pytest.fixture(scope="session")
def trays(inventory: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Tray]:
    """Every host of group gb200, reached over SSH with the inventory's user, key and options."""
    control_dir = tmp_path_factory.mktemp("ssh")
    hostvars = inventory["_meta"]["hostvars"]
    result = {}
    for name in inventory["gb200"]["hosts"]:
        hv = hostvars[name]
        extra = " ".join(
            [
                hv.get("ansible_ssh_common_args", ""),
                "-o LogLevel=ERROR -o BatchMode=yes",
                f"-o ControlMaster=auto -o ControlPersist=60s -o ControlPath={control_dir}/%C",
            ]
        )
        host = testinfra.get_host(
            f"ssh://{hv.get('ansible_user', 'root')}@{hv['ansible_host']}",
            ssh_identity_file=hv["ansible_ssh_private_key_file"],
            ssh_extra_args=extra,
        )
        result[name] = Tray(name=name, address=hv["ansible_host"], host=host)
    assert result, f"no host in group gb200 of {EMULATED_HOSTS}"
    return result


@pytest.fixture(scope="session")
def plan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The plan for the emulated inventory, as `wideep.gb200.render` writes it (plan.json)."""
    render_dir = tmp_path_factory.mktemp("render")
    run = run_playbook("render", "-e", f"gb200_render_dir={render_dir}")
    assert run.rc == 0, run.describe()
    data: dict[str, Any] = json.loads((render_dir / "plan.json").read_text(encoding="utf-8"))
    return data
