"""wideep.gb200.tray_facts: its action's shell read, its module and ansible.builtin.setup agree.

On this machine (Debian 12, as the emulated trays): the action answers without the module (a
module result carries `invocation`), with exactly the values setup gives the same keys. Where
the read cannot be certain (another distribution, Debian testing, an unknown machine), the
action leaves it to the module, which runs setup's own collectors.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ansible_module import ROOT, ansible_env, run_module, run_module_file

from ansible_collections.wideep.gb200.plugins.action.tray_facts import facts_from
from ansible_collections.wideep.gb200.plugins.module_utils._tray_facts import KEYS


def setup_facts() -> dict[str, str]:
    command = [str(Path(sys.executable).parent / "ansible"), "localhost", "-c", "local", "-m", "ansible.builtin.setup"]
    command += ["-a", "gather_subset=!all,!min,distribution,platform", "-e", f"ansible_python_interpreter={sys.executable}"]
    done = subprocess.run(command, env=ansible_env(), text=True, capture_output=True, check=True, cwd=ROOT, timeout=300)
    facts = json.loads(done.stdout[done.stdout.index("{") :])["plays"][0]["tasks"][0]["hosts"]["localhost"]["ansible_facts"]
    return {key: facts[f"ansible_{key}"] for key in KEYS}


def test_the_read_the_module_and_setup_agree_here(tmp_path: Path) -> None:
    rc, action, output = run_module("tray_facts", "")
    assert rc == 0, output
    assert "invocation" not in action, "the action ran the module instead of its shell read"
    module = run_module_file("tray_facts", {}, tmp_path)
    assert action["ansible_facts"] == module["ansible_facts"] == setup_facts()
    assert sorted(action["ansible_facts"]) == sorted(KEYS)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


BOOKWORM = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=debian\n'
NOBLE = 'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\nVERSION_CODENAME=noble\nID=ubuntu\nID_LIKE=debian\n'


def read(os_release: str, debian_version: str | None, uname: str = "Linux 6.1.0-37-arm64 aarch64") -> str:
    version = "-" if debian_version is None else b64(debian_version)
    return f"O {b64(os_release)}\nV {version}\nU {uname}\nE\n"


def test_a_debian_point_release_is_answered() -> None:
    facts = facts_from(read(BOOKWORM, "12.11\n"))
    assert facts is not None
    assert (facts["distribution"], facts["distribution_version"], facts["distribution_major_version"]) == ("Debian", "12.11", "12")
    assert (facts["distribution_release"], facts["architecture"], facts["kernel"]) == ("bookworm", "aarch64", "6.1.0-37-arm64")


@pytest.mark.parametrize(
    "output",
    [
        read(NOBLE, "trixie/sid\n"),  # Ubuntu: setup's answer (the module runs)
        read(BOOKWORM.replace('VERSION_ID="12"\n', ""), "trixie/sid\n"),  # testing
        read(BOOKWORM, "13.1\n"),  # the point release of another major
        read(BOOKWORM, None),
        read(BOOKWORM, "12.11\n", "Linux 6.1.0 ppc64le"),
        read(BOOKWORM, "12.11\n", "Darwin 23.0 arm64"),
        read(BOOKWORM, "12.11\n").replace("E\n", ""),  # cut short
    ],
    ids=["ubuntu", "testing", "other-major", "no-debian_version", "ppc64le", "not-linux", "cut-short"],
)
def test_what_the_read_cannot_be_certain_of_goes_to_the_module(output: str) -> None:
    assert facts_from(output) is None


# A provisioning role's first task: tray_facts with reuse and the role's supported platforms.
def role_check(distributions: list[str], architectures: list[str], *, gather_first: bool, tmp_path: Path) -> list[dict[str, Any]]:
    check = {"reuse": True, "role": "rdma", "supported_distributions": distributions, "supported_architectures": architectures}
    tasks: list[dict[str, Any]] = [{"name": "the run's facts", "wideep.gb200.tray_facts": None}] if gather_first else []
    tasks.append({"name": "the role's check", "wideep.gb200.tray_facts": check, "register": "checked", "ignore_errors": True})
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}]
    path = tmp_path / "play.yml"
    path.write_text(json.dumps(play))
    command = [str(Path(sys.executable).parent / "ansible-playbook"), str(path), "-e", f"ansible_python_interpreter={sys.executable}"]
    done = subprocess.run(command, env=ansible_env(), text=True, capture_output=True, check=False, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return [task["hosts"]["localhost"] for task in json.loads(done.stdout[done.stdout.index("{") :])["plays"][0]["tasks"]]


def test_a_role_check_reuses_the_runs_facts_and_reads_only_without_them(tmp_path: Path) -> None:
    facts = setup_facts()
    here = f"{facts['distribution']} {facts['distribution_major_version']}"
    _gathered, reused = role_check([here, "Ubuntu 24.04"], [facts["architecture"]], gather_first=True, tmp_path=tmp_path)
    assert not reused.get("failed"), reused
    assert reused["ansible_facts"] == {}, "facts the run had were read from the host again"
    assert "invocation" not in reused
    (alone,) = role_check([here], [facts["architecture"]], gather_first=False, tmp_path=tmp_path)
    assert not alone.get("failed"), alone
    assert alone["ansible_facts"] == facts, "a role on its own must read the facts it checks"


@pytest.mark.parametrize("gather_first", [True, False], ids=["reused", "read"])
def test_a_role_check_fails_on_a_platform_the_role_does_not_support(gather_first: bool, tmp_path: Path) -> None:
    facts = setup_facts()
    checked = role_check(["Debian 11", "Ubuntu 24.04"], ["ppc64le"], gather_first=gather_first, tmp_path=tmp_path)[-1]
    assert checked.get("failed"), checked
    assert checked["msg"] == (
        f"rdma supports Debian 11, Ubuntu 24.04 on ppc64le; this tray runs {facts['distribution']} {facts['distribution_version']} on {facts['architecture']}"
    )


def test_the_module_fails_as_the_action_does(tmp_path: Path) -> None:
    args = {"role": "host_limits", "supported_distributions": ["Debian 11"]}
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = dict(os.environ, PYTHONPATH=str(ROOT / "build" / "pythonpath"))
    module = [sys.executable, str(ROOT / "plugins" / "modules" / "tray_facts.py"), str(args_file)]
    done = subprocess.run(module, env=env, text=True, capture_output=True, check=False, timeout=60)
    answer = json.loads(done.stdout)
    facts = setup_facts()
    assert answer.get("failed") and done.returncode == 1, answer
    assert answer["msg"] == f"host_limits supports Debian 11; this tray runs {facts['distribution']} {facts['distribution_version']}"
    rc, action, output = run_module("tray_facts", "role=host_limits supported_distributions='Debian 11'")
    assert rc != 0 and action["msg"] == answer["msg"], output


def test_a_typo_in_a_role_check_fails_by_name() -> None:
    rc, result, output = run_module("tray_facts", "reuse=true supported_distribution='Debian 12'")
    assert rc != 0, output
    assert "supported_distribution" in result["msg"], result
