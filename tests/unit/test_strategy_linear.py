"""The wideep.gb200.linear strategy (ansible.cfg's default here): a task whose `when` is false on a
host is skipped in the controller's main process, with no worker forked, and everything a playbook
and its callbacks see is what ansible-core's own linear strategy gives.

The playbook (tests/unit/fixtures/strategy/cases.yml) holds the kinds of conditions the collection's
roles use and the ones that must be left to a worker (loops, delegation, lookups, errors, warnings).
It runs on three local hosts under each strategy; a test-only callback records every result with
the task's fields, and a test-only filter records where one conditional was evaluated.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests/unit/fixtures/strategy"
SECRET = "hf_strategy_SECRET_7c1e"
CORE = "ansible.builtin.linear"
OURS = "wideep.gb200.linear"


def run(strategy: str, tmp_path: Path, playbook: Path = CASES / "cases.yml", inventory: Path = CASES / "inventory.yml") -> dict[str, Any]:
    out = tmp_path / strategy
    out.mkdir()
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "pythonpath"),
        ANSIBLE_STRATEGY=strategy,
        ANSIBLE_CALLBACK_PLUGINS=str(CASES / "callback_plugins"),
        ANSIBLE_CALLBACKS_ENABLED="record_results,wideep.gb200.preload",
        ANSIBLE_FILTER_PLUGINS=str(CASES / "filter_plugins"),
        ANSIBLE_ROLES_PATH=str(CASES / "roles"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_DEPRECATION_WARNINGS="false",
        WIDEEP_TEST_RESULTS=str(out / "results.json"),
        WIDEEP_TEST_WHERE=str(out / "where.txt"),
    )
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), "-e", f"ansible_python_interpreter={sys.executable}", str(playbook)]
    done = subprocess.run(command, cwd=ROOT, env=env, text=True, capture_output=True, check=False, timeout=600)
    recorded = json.loads((out / "results.json").read_text())
    where = (out / "where.txt").read_text().splitlines() if (out / "where.txt").exists() else []
    return {"rc": done.returncode, "output": done.stdout + done.stderr, "where": sorted(where), **recorded}


def normalized(results: list[dict[str, Any]]) -> list[str]:
    """Every result as one JSON line, in a fixed order (hosts of one task finish in any order under
    either strategy); the uuids of a run's objects dropped."""

    def drop_uuids(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: drop_uuids(v) for k, v in value.items() if k != "uuid"}
        if isinstance(value, list):
            return [drop_uuids(v) for v in value]
        return value

    return sorted(json.dumps(drop_uuids(r), sort_keys=True) for r in results)


def output_lines(output: str) -> list[str]:
    """The default callback's lines, sorted: within a task, hosts are reported in the order they finish."""
    return sorted(line for line in output.splitlines() if line.strip())


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    tmp_path = tmp_path_factory.mktemp("strategy")
    return {strategy: run(strategy, tmp_path) for strategy in (CORE, OURS)}


def test_every_result_the_statistics_and_the_output_are_those_of_ansible_core_linear(both: dict[str, dict[str, Any]]) -> None:
    core, ours = both[CORE], both[OURS]
    assert core["rc"] == ours["rc"] == 2, ours["output"][-3000:]  # host 3 fails on purpose
    assert ours["stats"] == core["stats"]
    assert normalized(ours["results"]) == normalized(core["results"])
    assert output_lines(ours["output"]) == output_lines(core["output"])
    # The cases did what they say (not only the same under both): skips, runs, errors, handlers.
    by = {(r["task"], r["host"]): r for r in ours["results"]}
    assert by[("False on host 1 only", "h1")]["status"] == "skipped"
    assert by[("False on host 1 only", "h2")]["status"] == "ok"
    assert by[("The registered skip is the worker's", "h1")]["status"] == "ok"
    assert by[("A connection variable the play context sets (remote_user -> ansible_user)", "h2")]["status"] == "ok"
    assert by[("Undefined in the condition (an error where it is evaluated)", "h1")]["status"] == "failed ignore_errors=True"
    assert by[("Undefined only on the hosts where an earlier condition is true", "h1")]["status"] == "skipped"
    assert by[("Undefined only on the hosts where an earlier condition is true", "h3")]["status"] == "failed ignore_errors=True"
    assert by[("A handler that runs on host 1", "h1")]["status"] == "ok"
    assert by[("A handler whose when is false on every host", "h2")]["status"] == "skipped"
    assert by[("Included, false on every host that includes it", "h1")]["status"] == "skipped"
    assert ("Included, false on every host that includes it", "h2") not in by
    assert by[("skipper : In the role, false on host 3", "h3")]["status"] == "skipped"
    assert ("After the failure", "h3") not in by
    assert by[("Rescue, false on host 2 unless the failure is seen", "h2")]["status"] == "ok"
    assert by[("Rescue, false everywhere", "h2")]["status"] == "skipped"
    assert by[("Always, false on host 1", "h1")]["status"] == "skipped"
    assert by[("Throttled, false on host 3", "h3")]["status"] == "skipped"
    skipped = by[("A skipped task with no_log", "h2")]["result"]
    assert skipped["_ansible_no_log"] is True and "censored" in skipped, skipped
    assert SECRET not in ours["output"]
    assert ours["stats"]["h3"]["failures"] == 1


def test_a_false_condition_is_evaluated_on_the_controller_and_a_true_one_again_by_its_worker(both: dict[str, dict[str, Any]]) -> None:
    # The task's `when` is true on h2 only: under ansible-core every host's worker evaluates it;
    # here each host is evaluated once on the controller, and h2 once more by the worker that runs it.
    assert both[CORE]["where"] == ["recorded h1 worker", "recorded h2 worker", "recorded h3 worker"]
    assert both[OURS]["where"] == ["recorded h1 controller", "recorded h2 controller", "recorded h2 worker", "recorded h3 controller"]


def test_skips_cost_no_fork(tmp_path: Path) -> None:
    """Forty tasks whose `when` is false on twelve hosts: ansible-core forks 480 workers, this strategy none
    (the controller's forks counted by the test callback)."""
    hosts = "".join(f"    s{i}: {{n: {i}}}\n" for i in range(12))
    (tmp_path / "inventory.yml").write_text(f"all:\n  vars:\n    ansible_connection: local\n  hosts:\n{hosts}")
    tasks = "".join(f"    - name: Skip {k}\n      ansible.builtin.debug:\n        msg: never\n      when: n > 100\n" for k in range(40))
    (tmp_path / "play.yml").write_text(f"- name: Skips\n  hosts: all\n  gather_facts: false\n  tasks:\n{tasks}")
    forks = {}
    for strategy in (CORE, OURS):
        result = run(strategy, tmp_path, tmp_path / "play.yml", tmp_path / "inventory.yml")
        assert result["rc"] == 0, result["output"][-2000:]
        assert all(s["skipped"] == 40 and s["ok"] == 0 for s in result["stats"].values()), result["stats"]
        forks[strategy] = result["forks"]
    assert forks == {CORE: 480, OURS: 0}
