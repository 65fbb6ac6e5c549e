"""Fixtures for the fault tests: an emulated cluster with two decode workers of two trays each.

`make fault-test` starts it (its own name and subnet: WIDEEP_EMU_NAME=wideep-fault by default, so
it never meets the molecule `cluster` scenario's cluster), converges it with site, runs these
tests and takes it down. By hand, with such a cluster up:

    .venv/bin/pytest tests/faults            # build/bench/faults.json and a table at the end

The trays are reached over SSH as tests/cluster reaches them (cluster_helpers).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cluster"))
from cluster_helpers import EMULATED_HOSTS, ROOT, Tray, run_playbook

FAULTS_JSON = ROOT / "build" / "bench" / "faults.json"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: fault injection on the emulated cluster (make fault-test)")


@pytest.fixture(scope="session")
def plan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The plan of the running cluster (wideep.gb200.render), which must have two decode workers
    of two trays each: the fault tests kill a rank of one and watch the other."""
    assert EMULATED_HOSTS.is_file(), f"{EMULATED_HOSTS} missing: run `make fault-test` (it starts the cluster)"
    render_dir = tmp_path_factory.mktemp("render")
    run = run_playbook("render", "-e", f"gb200_render_dir={render_dir}")
    assert run.rc == 0, run.describe()
    data: dict[str, Any] = json.loads((render_dir / "plan.json").read_text(encoding="utf-8"))
    decode = [w for w in data["workers"] if w["role"] == "decode"]
    assert len(decode) >= 2 and all(len(w["hosts"]) >= 2 for w in decode[:2]), (
        f"the fault tests need two decode workers of >= 2 trays; {EMULATED_HOSTS} has {[(w['name'], w['hosts']) for w in decode]}: "
        "start it with `emulated/cluster.py up --prefill-workers 1 --prefill-nodes 1 --decode-workers 2 --decode-nodes 2`"
    )
    return data


@pytest.fixture(scope="session")
def trays(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Tray]:
    import yaml

    control_dir = tmp_path_factory.mktemp("ssh")
    gb200 = yaml.safe_load(EMULATED_HOSTS.read_text(encoding="utf-8"))["all"]["children"]["gb200"]
    options = gb200["vars"]
    extra = " ".join(
        [
            options.get("ansible_ssh_common_args", ""),
            "-o LogLevel=ERROR -o BatchMode=yes",
            f"-o ControlMaster=auto -o ControlPersist=120s -o ControlPath={control_dir}/%C",
        ]
    )
    result = {}
    for name, hostvars in gb200["hosts"].items():
        host = testinfra.get_host(
            f"ssh://{options.get('ansible_user', 'root')}@{hostvars['ansible_host']}",
            ssh_identity_file=options["ansible_ssh_private_key_file"],
            ssh_extra_args=extra,
        )
        result[name] = Tray(name=name, address=hostvars["ansible_host"], host=host)
    return result


@pytest.fixture(scope="session")
def results() -> Any:
    """Every fault's record; written to build/bench/faults.json and printed as a table at the end."""
    records: list[dict[str, Any]] = []
    yield records
    if not records:
        return
    FAULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(FAULTS_JSON.read_text(encoding="utf-8")) if FAULTS_JSON.is_file() else {}
    by_name = {r["fault"]: r for r in previous.get("faults", [])}
    by_name.update({r["fault"]: r for r in records})
    document = {"generated_by": "tests/faults (make fault-test)", "faults": list(by_name.values())}
    FAULTS_JSON.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    sys.stdout.write("\n" + table(list(by_name.values())) + f"\n(written to {FAULTS_JSON})\n")


def table(records: list[dict[str, Any]]) -> str:
    lines = [
        "| fault | client-visible errors | time to restored capacity | recovered by |",
        "|---|---|---|---|",
    ]
    for r in records:
        seconds = "never lost" if r["restored_s"] == 0 else ("not restored" if r["restored_s"] is None else f"{r['restored_s']:.1f} s")
        by = r["recovered_by"] + (f" ({r['recovery_run_s']:.0f} s run)" if r.get("recovery_run_s") else "")
        lines.append(f"| {r['fault']} | {r['errors']}/{r['requests']} | {seconds} | {by} |")
    return "\n".join(lines)
