"""wideep.gb200.host_info: its action's shell read and its module give the same answer.

The action (through the real `ansible` command, local connection, this Debian machine's dpkg)
must answer without running the module (a module result carries `invocation`); the module runs
as Ansible runs a module file (`python host_info.py ARGS_FILE`), on the same tray-like tree.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ansible_module import run_module, run_module_file


def tree(tmp_path: Path) -> dict[str, list[str]]:
    root = tmp_path / "tray"
    (root / "etc" / "docker").mkdir(parents=True)
    (root / "etc" / "docker" / "daemon.json").write_text('{"runtimes": {}}\n')
    (root / "latin1.conf").write_bytes(b"caf\xe9\n")
    (root / "lib").mkdir()
    (root / "lib" / "libmlx5.so.1").write_bytes(b"\x7fELF")
    (root / "lib" / "libmlx5.so").symlink_to("libmlx5.so.1")
    (root / "odd link").symlink_to("a target with spaces and 'quotes'")  # dangling
    os.mkfifo(root / "fifo")
    return {
        "packages": ["bash", "coreutils", "wideep-no-such-package", "bash=5.2.15-2+b2", "dpkg"],
        "paths": [str(root / p) for p in ("lib/libmlx5.so", "lib/libmlx5.so.1", "lib", "odd link", "fifo", "absent")],
        "contents": [str(root / p) for p in ("etc/docker/daemon.json", "latin1.conf", "missing.json", "lib")],
    }


# A stand-in for the tray's docker CLI (unit tests run without a Docker daemon; the cluster tests
# use the trays' real one): two images it holds, anything else "No such image", and "down:1"
# answered as a daemon that does not answer; a running and an exited container, any other "No
# such container".
FAKE_DOCKER = """#!/bin/sh
case "$1 $2" in
  "image inspect")
    [ "$3" = "--" ] || exit 2
    case "$4" in
      app:1) echo '[{"Id": "sha256:aaa", "RepoTags": ["app:1"], "Config": {"Env": ["A=1"]}}]' ;;
      sha256:bbb) echo '[{"Id": "sha256:bbb", "RepoTags": []}]' ;;
      down:1) echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock" >&2; exit 1 ;;
      *) echo "Error response from daemon: No such image: $4" >&2; echo "[]"; exit 1 ;;
    esac ;;
  "container inspect")
    shift 2
    [ "$1" = "--format" ] && { [ "$2" = "{{json .State}}" ] || exit 2; shift 2; }
    [ "$1" = "--" ] || exit 2
    case "$2" in
      worker-up) echo '{"Status": "running", "Running": true, "ExitCode": 0}' ;;
      worker-down) echo '{"Status": "exited", "Running": false, "ExitCode": 137}' ;;
      *) echo "Error response from daemon: No such container: $2" >&2; exit 1 ;;
    esac ;;
  *) exit 2 ;;
esac
"""


def fake_docker(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    return bin_dir


def test_the_shell_read_answers_as_the_module_does(tmp_path: Path) -> None:
    args = tree(tmp_path) | {"images": ["app:1", "absent:2", "sha256:bbb"], "container_states": ["worker-up", "worker-down", "worker-gone"]}
    bin_dir = fake_docker(tmp_path)
    rc, shell, output = run_module("host_info", json.dumps(args), path_prefix=bin_dir)
    assert rc == 0, output
    assert "invocation" not in shell, "the action ran the module instead of its shell read"
    module = run_module_file("host_info", args, tmp_path, path_prefix=bin_dir)
    assert [i["Id"] for i in shell["images"]] == ["sha256:aaa", "sha256:bbb"] and shell["images"][0]["Config"] == {"Env": ["A=1"]}
    assert shell["container_states"] == {
        "worker-up": {"Status": "running", "Running": True, "ExitCode": 0},
        "worker-down": {"Status": "exited", "Running": False, "ExitCode": 137},
        "worker-gone": None,
    }
    for key in ("installed_packages", "missing_packages", "paths", "contents", "images", "container_states"):
        assert shell[key] == module[key], key
    assert shell["changed"] is False and module["changed"] is False
    assert shell["installed_packages"] == ["bash", "coreutils", "dpkg"]
    assert shell["missing_packages"] == ["wideep-no-such-package", "bash=5.2.15-2+b2"]
    root = tmp_path / "tray"
    assert shell["paths"][str(root / "lib" / "libmlx5.so")] == {"type": "link", "exists": True, "target": "libmlx5.so.1"}
    assert shell["paths"][str(root / "odd link")] == {"type": "link", "exists": False, "target": "a target with spaces and 'quotes'"}
    assert [shell["paths"][str(root / p)]["type"] for p in ("lib/libmlx5.so.1", "lib", "fifo", "absent")] == ["file", "directory", "other", "absent"]
    assert shell["paths"][str(root / "absent")]["exists"] is False and shell["paths"][str(root / "fifo")]["exists"] is True
    assert shell["contents"] == {
        str(root / "etc" / "docker" / "daemon.json"): '{"runtimes": {}}\n',
        str(root / "latin1.conf"): "caf\ufffd\n",
        str(root / "missing.json"): None,
        str(root / "lib"): None,
    }


def test_what_the_shell_read_cannot_take_goes_to_the_module(tmp_path: Path) -> None:
    """A path the module expands ($VARS): the module answers, with the expanded path's facts. A
    Docker daemon that does not answer is no answer: the module runs and fails, naming it."""
    args = {"paths": ["$HOME"], "packages": [], "contents": []}
    rc, result, output = run_module("host_info", json.dumps(args))
    assert rc == 0 and "invocation" in result, output
    assert result["paths"][os.environ["HOME"]]["type"] == "directory"
    rc, result, output = run_module("host_info", json.dumps({"images": ["app:1", "down:1"]}), path_prefix=fake_docker(tmp_path))
    assert rc != 0 and "docker image inspect down:1 failed: Cannot connect to the Docker daemon" in result["msg"], output
    rc, result, output = run_module("host_info", json.dumps({"packages": ["bash"], "package": ["dash"]}))  # a typo
    assert rc != 0 and "Unsupported parameters" in result["msg"] and "package" in result["msg"], output
