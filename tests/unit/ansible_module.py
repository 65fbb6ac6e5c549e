"""Run the collection's modules on localhost through the real `ansible` / `ansible-playbook` commands (json callback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# The four runs of community.docker's check-mode rhythm, in order.
ROUNDS = ("check", "apply", "check again", "apply again")


def ansible_env(path_prefix: Path | None = None) -> dict[str, str]:
    """The environment every test run of ansible/ansible-playbook gets: this checkout as the
    collection, JSON output, no localhost warnings; PATH prefixed with path_prefix if given."""
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "pythonpath"),
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="true",
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
    )
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}:{env['PATH']}"
    return env


def _json_output(stdout: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(stdout[stdout.find("{") :])
    return data


def run_module(module: str, args: str, *flags: str, path_prefix: Path | None = None, timeout: float = 300) -> tuple[int, dict[str, Any], str]:
    """(ansible's exit code, the module's result for localhost, all output) of `ansible localhost -m wideep.gb200.MODULE -a ARGS`."""
    command = [str(Path(sys.executable).parent / "ansible"), "localhost", "-c", "local", "-m", f"wideep.gb200.{module}", "-a", args, *flags]
    done = subprocess.run(command, env=ansible_env(path_prefix), text=True, capture_output=True, check=False, cwd=ROOT, timeout=timeout)
    output = done.stdout + done.stderr
    result: dict[str, Any] = _json_output(done.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return done.returncode, result, output


def run_module_file(module: str, args: dict[str, Any], args_dir: Path, path_prefix: Path | None = None) -> dict[str, Any]:
    """The module's own answer, as Ansible runs a module file (`python MODULE.py ARGS_FILE`), with no
    action plugin in front of it: to compare with what the action answers from a shell read."""
    args_file = args_dir / f"{module}-args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = dict(os.environ, PYTHONPATH=str(ROOT / "build" / "pythonpath"))
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}:{env['PATH']}"
    path = ROOT / "plugins" / "modules" / f"{module}.py"
    done = subprocess.run([sys.executable, str(path), str(args_file)], env=env, text=True, capture_output=True, check=True, timeout=60)
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def run_rounds(module: str, args: dict[str, Any], *, diff: bool = False, timeout: float = 300) -> list[dict[str, Any]]:
    """check -> apply -> check again -> apply again: one module, the same arguments, one playbook on localhost.

    Returns the four results in that order (ROUNDS). Each task fails the play if the module fails.
    """
    tasks = [{"name": name, f"wideep.gb200.{module}": args, "check_mode": name.startswith("check")} for name in ROUNDS]
    play = [{"name": f"{module}: check mode against the real run", "hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", prefix="rounds-", delete=False) as handle:
        json.dump(play, handle)  # JSON is YAML
    try:
        command = [str(Path(sys.executable).parent / "ansible-playbook"), handle.name, *(["--diff"] if diff else [])]
        done = subprocess.run(command, env=ansible_env(), text=True, capture_output=True, check=False, cwd=ROOT, timeout=timeout)
    finally:
        os.unlink(handle.name)
    assert done.returncode == 0, done.stdout + done.stderr
    results = [task["hosts"]["localhost"] for task in _json_output(done.stdout)["plays"][0]["tasks"]]
    assert len(results) == len(ROUNDS), done.stdout
    return results


def assert_check_predicts_apply(results: list[dict[str, Any]], ignore: Iterable[str] = ()) -> None:
    """community.docker's rhythm: the check and the real run both changed and say the same thing;
    the second round changes nothing and says so in check mode too; a diff's before equals its after then.

    `ignore`: result keys a real run knows only by doing it (e.g. what it downloaded and hashed).
    """
    volatile = {"invocation", "_ansible_no_log", "warnings", "deprecations", "changed", "diff", *ignore}
    check, apply, check_again, apply_again = results
    assert check["changed"] is True, f"the check predicted no change: {check}"
    assert apply["changed"] is True, f"the real run changed nothing: {apply}"
    predicted = {k: v for k, v in check.items() if k not in volatile}
    done = {k: v for k, v in apply.items() if k not in volatile}
    assert predicted == done, f"the check predicted {predicted}, the real run did {done}"
    assert check.get("diff") == apply.get("diff"), f"the check's diff {check.get('diff')} is not the real run's {apply.get('diff')}"
    assert check_again["changed"] is False, f"after the real run, the check still predicts a change: {check_again}"
    assert apply_again["changed"] is False, f"the second real run changed something: {apply_again}"
    for again in (check_again, apply_again):
        for diff in again.get("diff") or []:
            assert diff.get("before") == diff.get("after"), f"an unchanged result shows a diff: {diff}"
