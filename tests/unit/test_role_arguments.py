"""wideep.gb200.role_arguments: the roles' variables checked once, on the controller, for every host.

The playbooks include their roles with ``rolespec_validate: false`` (Ansible's own check is a task
per host and role: a forked worker each, 13 roles x 18 trays on a rack's no-op run) and run this
check in their plan play instead. These tests run the real playbooks on the example inventory
(inventories/gb200, whose addresses nothing here reaches: every run below must stop before any
connection) with bad values layered on by a second inventory file.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_module import ROOT, ansible_env

from ansible_collections.wideep.gb200.plugins.action.role_arguments import check_host, role_options, selected, skip_problem

SECRET = "hf_role_arguments_SECRET_7c1e"


def playbook(name: str, tmp_path: Path, host_vars: dict[str, dict[str, Any]], *args: str) -> subprocess.CompletedProcess[str]:
    extra = tmp_path / "extra.yml"
    extra.write_text(yaml.safe_dump({"all": {"hosts": host_vars}}))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "pythonpath"), ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false")
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "inventories/gb200", "-i", str(extra), f"playbooks/{name}.yml", *args]
    return subprocess.run(command, env=env, text=True, capture_output=True, check=False, cwd=ROOT, timeout=300)


def test_every_problem_of_every_host_and_role_at_once_before_any_tray_is_reached(tmp_path: Path) -> None:
    run = playbook(
        "serve",
        tmp_path,
        {
            "gb200-p1": {"sglang_worker_pull": "sometimes", "preflight_gpu_count": "four"},
            "gb200-d0": {"smoke_timeout": "soon", "sglang_worker_stop_timeout": "{{ ansible_facts.not_gathered_yet }}"},
        },
    )
    out = run.stdout + run.stderr
    assert run.returncode == 2, out
    assert "3 problem(s) with role variables, nothing was changed:" in out
    assert "gb200-p1: value of sglang_worker_pull must be one of: missing, never, always, got: sometimes (a variable of role wideep.gb200.sglang_worker" in out
    assert "gb200-p1: argument 'preflight_gpu_count' is of type str and we were unable to convert to int" in out
    assert "gb200-d0: argument 'smoke_timeout' is of type str" in out
    assert "ansible-doc -t role wideep.gb200.smoke" in out
    # a value that names a fact not gathered yet is left to the role, said
    assert re.search(r"unchecked:\s+gb200-d0:\s+- sglang_worker_stop_timeout\n", out), out
    # stopped in the plan play: no tray was connected to (their addresses are not reachable here)
    assert "UNREACHABLE" not in out and "gb200-p0 " not in out.split("PLAY RECAP")[1], out


def test_a_secret_is_masked_at_any_verbosity(tmp_path: Path) -> None:
    bad = {"model_weights_hf_token": SECRET, "model_weights_port": f"port {SECRET}", "model_weights_source": {"type": "path", "path": "/m"}}
    run = playbook("stage", tmp_path, {"gb200-p0": bad}, "-vvv")
    out = run.stdout + run.stderr
    assert run.returncode == 2, out
    assert "gb200-p0: argument 'model_weights_port' is of type str and we were unable to convert to int" in out
    assert SECRET not in out


def test_tags_select_the_roles_checked(tmp_path: Path) -> None:
    """stage --tags image needs no weights source (the example inventory names none)."""
    unset = playbook("stage", tmp_path, {}, "--tags", "weights", "--check")
    assert unset.returncode == 2 and "missing required arguments: model_weights_source" in unset.stdout, unset.stdout + unset.stderr
    image = playbook("stage", tmp_path, {"gb200-p0": {"serving_image_source": "nope"}}, "--tags", "image", "--check")
    assert image.returncode == 2 and "model_weights_source" not in image.stdout, image.stdout
    assert "gb200-p0: argument 'serving_image_source' is of type str and we were unable to convert to dict" in image.stdout, image.stdout


def test_gb200_provision_skip_is_checked_with_the_roles(tmp_path: Path) -> None:
    run = playbook("provision", tmp_path, {"gb200-d1": {"gb200_provision_skip": ["gdrcopy", "infiniband"], "imex_domain_max_trays": "many"}})
    out = run.stdout + run.stderr
    assert run.returncode == 2, out
    assert "gb200-d1: gb200_provision_skip must be a list of these roles (rdma, gpu_driver, gdrcopy, host_limits, container_runtime, imex)" in out
    assert 'got ["gdrcopy", "infiniband"]; not roles: infiniband' in out
    assert "gb200-d1: argument 'imex_domain_max_trays' is of type str" in out


def test_the_check_agrees_with_ansibles_own(tmp_path: Path) -> None:
    """Ansible's own check of the role (include_role, validation on) on localhost fails first with the same message."""
    bad = {"rdma_require_active_hcas": "maybe", "rdma_packages": 5, "rdma_mlx5_dev_link": "sometimes"}
    play = [{"hosts": "localhost", "gather_facts": False, "vars": bad, "tasks": [{"ansible.builtin.include_role": {"name": "wideep.gb200.rdma"}}]}]
    (tmp_path / "own.yml").write_text(yaml.safe_dump(play))
    env = ansible_env()  # JSON output
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(tmp_path / "own.yml")]
    done = subprocess.run(command, env=env, text=True, capture_output=True, check=False, cwd=ROOT, timeout=300)
    result = json.loads(done.stdout)["plays"][0]["tasks"][-1]["hosts"]["localhost"]
    assert result["validate_args_context"]["name"] == "rdma", done.stdout
    problems, unchecked = check_host("t", "rdma", role_options("rdma"), bad)
    suffix = " (a variable of role wideep.gb200.rdma; fix it in the inventory as `ansible-doc -t role wideep.gb200.rdma` says)"

    def unordered(message: str) -> str:  # the valid booleans are listed from a set, in hash order
        return re.sub(r"Valid booleans include: [^(]*", "Valid booleans include: ...", message)

    assert [unordered(p) for p in problems] == [unordered(f"t: {message}{suffix}") for message in result["argument_errors"]] and len(problems) == 2
    assert unchecked == []
    assert check_host("t", "rdma", role_options("rdma"), {"rdma_require_active_hcas": "yes"}) == ([], [])


@pytest.mark.parametrize(
    ("value", "skips", "problem"),
    [
        (None, [], None),
        ([], [], None),
        (["gdrcopy"], ["gdrcopy"], None),
        ("gdrcopy", [], 'got "gdrcopy"'),
        (["gdrcopy", "ib"], [], "; not roles: ib"),
    ],
)
def test_skip_variable(value: Any, skips: list[str], problem: str | None) -> None:
    got, found = skip_problem("t", "gb200_provision_skip", value, ["rdma", "gdrcopy"])
    assert got == skips
    assert (found is None) if problem is None else (problem in str(found))


def test_tag_selection() -> None:
    assert selected([], ["image"], [])
    assert selected(["weights"], None, None) and selected(["weights"], ["all"], [])
    assert not selected(["weights"], ["image"], []) and selected(["weights"], ["weights", "image"], [])
    assert not selected(["weights"], ["all"], ["weights"])


def plays(name: str) -> list[dict[str, Any]]:
    return yaml.safe_load((ROOT / "playbooks" / f"{name}.yml").read_text())


def role_checks(name: str) -> dict[str, set[str]]:
    """The roles a playbook's check covers, each with its host groups (provision's task, or __roles_to_check)."""
    checks: dict[str, set[str]] = {}
    for play in plays(name):
        entries = (play.get("vars") or {}).get("__roles_to_check", [])
        for task in play.get("tasks", []):
            entries += (task.get("wideep.gb200.role_arguments") or {}).get("roles", [])
        for entry in entries:
            checks.setdefault(entry["name"], set()).update(entry["hosts"])
    return checks


@pytest.mark.parametrize("name", ["provision", "stage", "serve"])
def test_every_role_included_without_ansibles_check_is_checked_for_its_plays_hosts(name: str) -> None:
    checks = role_checks(name)
    unchecked = []
    for play in plays(name):
        for task in play.get("tasks", []):
            for key in ("ansible.builtin.include_role", "ansible.builtin.import_role"):
                include = task.get(key) or {}
                if include.get("rolespec_validate") is False:
                    role = include["name"].removeprefix("wideep.gb200.")
                    groups = set(play["hosts"].split(":"))
                    if not groups <= checks.get(role, set()):
                        unchecked.append(f"{name}: {role} on {play['hosts']} (checked on {sorted(checks.get(role, set()))})")
    assert unchecked == []
    assert checks, f"{name} checks no role"
