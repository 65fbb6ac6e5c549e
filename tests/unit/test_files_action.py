"""wideep.gb200.files through its action plugin and the real `ansible` command (local connection).

The action answers "nothing to do" from one shell read of the files (no Python on the host) and
runs the module in every other case. A module result carries `invocation`; the action's own
answer does not, which is how these tests tell the two paths apart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ansible_module import ansible_env

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-token-value-0123456789"


def files(args: dict[str, Any], *flags: str, no_log: bool = False, where: Path | None = None) -> tuple[dict[str, Any], str]:
    """One wideep.gb200.files task on localhost; (its result, the whole output). The playbook is
    written beside dest, or into `where`."""
    play = [{"name": "files", "hosts": "localhost", "gather_facts": False, "tasks": [{"name": "files", "wideep.gb200.files": args, "no_log": no_log}]}]
    playbook = (where or Path(args["dest"]).parent) / "files-play.yml"
    playbook.write_text(json.dumps(play))
    env = ansible_env()
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook), *flags]
    command += ["-e", f"ansible_python_interpreter={sys.executable}"]
    proc = subprocess.run(command, env=env, text=True, capture_output=True, check=False, timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    start = proc.stdout.index("{")
    report = json.loads(proc.stdout[start:])
    result: dict[str, Any] = report["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return result, output


def module_ran(result: dict[str, Any]) -> bool:
    return "invocation" in result


def test_an_unchanged_set_is_answered_without_the_module_in_every_mode(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    args = {
        "dest": str(dest),
        "files": {"etc/a.conf": {"content": "a=1\n"}, "etc/b.sh": {"content": "#!/bin/sh\n", "mode": "0755"}, "etc/gone.conf": {"state": "absent"}},
    }
    first = files(args)[0]
    assert module_ran(first) and first["changed"] is True and first["changed_files"] == ["etc/a.conf", "etc/b.sh"]
    for flags in ((), ("--check",), ("--diff",), ("--check", "--diff")):
        again, output = files(args, *flags)
        assert not module_ran(again), (flags, again)
        assert again["changed"] is False and again["changed_files"] == [] and again["unchanged_files"] == 3, output[-2000:]
        assert ("diff" in again) == ("--diff" in flags)


def test_any_difference_runs_the_module_which_puts_it_right(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    args = {"dest": str(dest), "files": {"a.conf": {"content": "a=1\n"}, "gone.conf": {"state": "absent"}}}
    files(args)
    path = dest / "a.conf"
    spoil = {
        "content": lambda: path.write_text("a=2\n"),
        "mode": lambda: path.chmod(0o600),
        "owner": lambda: os.chown(path, 65534, 65534),
        "absent entry present": lambda: (dest / "gone.conf").write_text("x\n"),
        "missing": path.unlink,
    }
    for what, act in spoil.items():
        act()
        checked = files(args, "--check")[0]
        assert module_ran(checked) and checked["changed"] is True, (what, checked)
        fixed = files(args)[0]
        assert module_ran(fixed) and fixed["changed"] is True, (what, fixed)
        quiet = files(args)[0]
        assert not module_ran(quiet) and quiet["changed"] is False, (what, quiet)
    assert path.read_text() == "a=1\n" and path.stat().st_mode & 0o777 == 0o644 and not (dest / "gone.conf").exists()
    assert (path.stat().st_uid, path.stat().st_gid) == (os.geteuid(), os.getegid())


def test_what_the_read_cannot_judge_goes_to_the_module(tmp_path: Path) -> None:
    """A symlink (the module follows it), a directory, a dest the module expands: never answered by the read."""
    dest = tmp_path / "root"
    dest.mkdir()
    (tmp_path / "target.conf").write_text("a=1\n")
    (dest / "link.conf").symlink_to(tmp_path / "target.conf")
    result = files({"dest": str(dest), "files": {"link.conf": {"content": "a=1\n"}}})[0]
    assert module_ran(result) and result["changed"] is False  # the module judged it (content, mode, owner as wanted)
    (dest / "dir.conf").mkdir()
    result = files({"dest": str(dest), "files": {"dir.conf": {"state": "absent"}}}, "--check")[0]
    assert module_ran(result) and result["changed"] is True
    os.environ["WIDEEP_FILES_TEST_DEST"] = str(dest)
    try:
        files({"dest": str(dest), "files": {"x.conf": {"content": "x\n"}}})
        result = files({"dest": "$WIDEEP_FILES_TEST_DEST", "files": {"x.conf": {"content": "x\n"}}}, where=tmp_path)[0]
    finally:
        del os.environ["WIDEEP_FILES_TEST_DEST"]
    assert module_ran(result) and result["changed"] is False


def test_a_secret_content_never_reaches_the_output(tmp_path: Path) -> None:
    dest = tmp_path / "secrets"
    args = {"dest": str(dest), "mode": "0600", "directory_mode": "0700", "files": {"run/worker.env": {"content": f"HF_TOKEN={SECRET}\n"}}}
    for _round in range(2):  # the module writes, then the read answers
        output = files(args, "-vvvv", no_log=True)[1]
        assert SECRET not in output
    assert (dest / "run" / "worker.env").read_text() == f"HF_TOKEN={SECRET}\n"


def test_a_registered_no_log_result_holds_no_secret(tmp_path: Path) -> None:
    """The containers role registers its no_log secret-files task (to know whether secret values
    changed): the registered result, shown by a later task, holds `changed` and no content, on the
    module's path (it writes, --diff) and on the read's."""
    dest = tmp_path / "secrets"
    args = {"dest": str(dest), "mode": "0600", "files": {"worker.env": {"content": f"HF_TOKEN={SECRET}\n"}}}
    tasks = [
        {"name": "files", "wideep.gb200.files": args, "no_log": True, "register": "written"},
        {"name": "show", "ansible.builtin.debug": {"var": "written"}},
    ]
    playbook = tmp_path / "register-play.yml"
    playbook.write_text(json.dumps([{"name": "files", "hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook), "--diff"]
    command += ["-e", f"ansible_python_interpreter={sys.executable}"]
    for changed in (True, False):
        proc = subprocess.run(command, env=ansible_env(), text=True, capture_output=True, check=False, timeout=120)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        shown = json.loads(proc.stdout[proc.stdout.index("{") :])["plays"][0]["tasks"][1]["hosts"]["localhost"]["written"]
        assert shown["changed"] is changed and SECRET not in proc.stdout + proc.stderr, shown


def test_directories_are_checked_by_the_read_and_put_right_by_the_module(tmp_path: Path) -> None:
    """The containers role's root-only directory of secret env files: created 0700, a wrong mode or
    owner put right, and a no-op answered by the read."""
    dest = tmp_path / "root"
    args = {"dest": str(dest), "mode": "0600", "directory_mode": "0700", "directories": {"etc/secret": "0700"}}
    args["files"] = {"etc/secret/a.env": {"content": "A=1\n"}}
    first = files(args)[0]
    assert module_ran(first) and first["changed_directories"] == ["etc/secret"] and first["changed_files"] == ["etc/secret/a.env"]
    secret = dest / "etc" / "secret"
    assert secret.stat().st_mode & 0o777 == 0o700
    quiet = files(args)[0]
    assert not module_ran(quiet) and quiet["changed"] is False and quiet["changed_directories"] == []
    for spoil in (lambda: secret.chmod(0o755), lambda: os.chown(secret, 65534, 65534)):
        spoil()
        checked = files(args, "--check")[0]
        assert module_ran(checked) and checked["changed_directories"] == ["etc/secret"] and checked["changed_files"] == []
        fixed = files(args)[0]
        assert module_ran(fixed) and fixed["changed"] is True
        assert secret.stat().st_mode & 0o777 == 0o700 and (secret.stat().st_uid, secret.stat().st_gid) == (os.geteuid(), os.getegid())
        assert not module_ran(files(args)[0])


def test_bad_or_unknown_arguments_reach_the_module_even_when_nothing_differs(tmp_path: Path) -> None:
    """The read never answers for arguments it does not check: a typo or a bad directory_mode
    fails as the module says, not as "nothing to do"."""
    dest = tmp_path / "root"
    args = {"dest": str(dest), "files": {"a.conf": {"content": "a=1\n"}}}
    files(args)
    assert not module_ran(files(args)[0])
    env = ansible_env()
    command = [str(Path(sys.executable).parent / "ansible"), "localhost", "-c", "local", "-m", "wideep.gb200.files"]
    command += ["-e", f"ansible_python_interpreter={sys.executable}"]
    for extra, said in (({"owner": "root"}, "Unsupported parameters"), ({"directory_mode": "rwx"}, "directory_mode 'rwx' is not octal")):
        done = subprocess.run([*command, "-a", json.dumps(args | extra)], env=env, text=True, capture_output=True, check=False, timeout=120)
        assert done.returncode != 0 and said in done.stdout, done.stdout[-2000:]
