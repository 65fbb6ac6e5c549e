"""The wideep.gb200.preload callback (enabled in ansible.cfg) loads every plugin it names before
the first fork, and the playbook still runs as without it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_repository_config_preloads_the_plugins_before_the_first_fork(tmp_path: Path) -> None:
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- name: Preload\n  hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - name: A collection filter in a worker\n      ansible.builtin.assert:\n"
        "        that: \"([{'name': 'x'}] | wideep.gb200._secret_env_files({})) == {}\"\n"
    )
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "pythonpath"), ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_CALLBACKS_ENABLED", None)  # ansible.cfg's own list
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-vvv", "-i", "localhost,", "-c", "local", str(playbook)]
    done = subprocess.run(command, cwd=ROOT, env=env, text=True, capture_output=True, check=False, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    loads = re.search(r"wideep\.gb200\.preload: (\d+) plugin loads", output)
    assert loads and int(loads.group(1)) > 40, output[-3000:]
    assert "wideep.gb200.preload: skipped" not in output
