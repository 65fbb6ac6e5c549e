"""Fixtures for the emulated-cluster tests: the trays over SSH (testinfra), the plan.

molecule's testinfra verifier runs these (molecule/cluster, `make cluster-test`) after the
scenario converged the cluster that `python3 emulated/cluster.py up` started. By hand, with the
cluster up and converged (`make demo`): `.venv/bin/pytest tests/cluster` (it ends with teardown).

Each test arranges what it needs: `serving` (autouse) converges the cluster with site.yml when a
planned container is not running (after a teardown, or on trays that were only started), so a
test runs alone (`pytest tests/cluster -k killed`) or in any order. Tests marked `last` (teardown)
run after the others only so that a full run does not converge twice.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
import testinfra
from cluster_helpers import EMULATED_GROUP_VARS, EMULATED_HOSTS, ROOT, Tray, ansible_env, run_playbook, tool


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "last: run after the other cluster tests (it undoes what they share, e.g. teardown)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `last` go to the end; the others keep their order (none depends on another)."""
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)


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


def _planned_containers_running(plan: dict[str, Any], trays: dict[str, Tray]) -> bool:
    """Every planned container runs as planned, and every tray holds the serving image (stage's
    serving_image gives it to the trays that lack it)."""
    if any(tray.host.run(f"docker image inspect --format . {plan['image']}").rc != 0 for tray in trays.values()):
        return False
    for host, spec in plan["hosts"].items():
        wanted = {c["name"]: c["labels"]["wideep.gb200.spec"] for c in spec["containers"]}
        if not wanted:
            continue
        running = {name: info for name, info in trays[host].containers().items() if info["State"]["Running"]}
        if any(name not in running or running[name]["Config"]["Labels"].get("wideep.gb200.spec") != spec_hash for name, spec_hash in wanted.items()):
            return False
    return True


@pytest.fixture(autouse=True)
def serving(plan: dict[str, Any], trays: dict[str, Tray]) -> None:
    """Arrange a converged, serving cluster: run site.yml when any planned container is not running
    as planned (site is idempotent: on a converged cluster it changes nothing)."""
    if not _planned_containers_running(plan, trays):
        run = run_playbook("site")
        assert run.rc == 0, run.describe()
