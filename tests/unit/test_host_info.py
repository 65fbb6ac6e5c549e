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
# such container". `--format` takes host_info's two templates only (its State; its State, image ID
# and labels), so a read that asked for more (the environment) fails the test.
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
    fmt=
    [ "$1" = "--format" ] && { fmt=$2; shift 2; }
    case "$fmt" in
      "" | "{{json .State}}") ;;
      '{"State":{{json .State}},"Image":{{json .Image}},"Labels":{{json .Config.Labels}}}') ;;
      *) exit 2 ;;
    esac
    [ "$1" = "--" ] || exit 2
    case "$2" in
      worker-up) state='{"Status": "running", "Running": true, "ExitCode": 0}'; labels='{"wideep.gb200.spec": "abc", "k": "v w"}' ;;
      worker-down) state='{"Status": "exited", "Running": false, "ExitCode": 137}'; labels=null ;;
      *) echo "Error response from daemon: No such container: $2" >&2; exit 1 ;;
    esac
    case "$fmt" in
      "{{json .State}}") echo "$state" ;;
      "") echo '[{"Config": {"Env": ["SECRET=x"]}}]' ;;
      *) printf '{"State":%s,"Image":"sha256:aaa","Labels":%s}\n' "$state" "$labels" ;;
    esac ;;
  *) exit 2 ;;
esac
"""


# A stand-in for a GB200 tray's nvidia-smi (no GPU here), answering the compute capability query
# only, with the columns nvidia-smi prints: two GPUs, and a line no GPU answers (ignored).
FAKE_NVIDIA_SMI = """#!/bin/sh
[ "$1 $2" = "--query-gpu=uuid,compute_cap --format=csv,noheader,nounits" ] || exit 2
echo "GPU-4c2f0b7e-0000-0000-0000-000000000001, 10.0"
echo "GPU-4c2f0b7e-0000-0000-0000-000000000002, 10.0"
echo "[N/A], [N/A]"
"""


def fake_docker(tmp_path: Path) -> Path:
    """A directory with the stand-in docker and nvidia-smi, to put first in PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("docker", FAKE_DOCKER), ("nvidia-smi", FAKE_NVIDIA_SMI)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def test_the_shell_read_answers_as_the_module_does(tmp_path: Path) -> None:
    names = ["worker-up", "worker-down", "worker-gone"]
    args = tree(tmp_path) | {"images": ["app:1", "absent:2", "sha256:bbb"], "container_states": names, "containers": names, "compute_capabilities": True}
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
    assert shell["containers"] == {
        "worker-up": {
            "State": {"Status": "running", "Running": True, "ExitCode": 0},
            "Image": "sha256:aaa",
            "Labels": {"wideep.gb200.spec": "abc", "k": "v w"},
        },
        "worker-down": {"State": {"Status": "exited", "Running": False, "ExitCode": 137}, "Image": "sha256:aaa", "Labels": None},
        "worker-gone": None,
    }
    assert shell["compute_capabilities"] == {"GPU-4c2f0b7e-0000-0000-0000-000000000001": "10.0", "GPU-4c2f0b7e-0000-0000-0000-000000000002": "10.0"}
    for key in ("installed_packages", "missing_packages", "paths", "contents", "images", "container_states", "containers", "compute_capabilities"):
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


def test_a_tray_without_nvidia_smi_has_no_compute_capability(tmp_path: Path) -> None:
    """No nvidia-smi (this machine has none): {} from the read and from the module alike."""
    args = {"compute_capabilities": True, "paths": ["/"]}
    rc, shell, output = run_module("host_info", json.dumps(args))
    assert rc == 0 and "invocation" not in shell, output
    module = run_module_file("host_info", args, tmp_path)
    assert shell["compute_capabilities"] == module["compute_capabilities"] == {}
