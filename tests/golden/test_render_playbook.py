"""wideep.gb200.render end to end: real ansible-playbook, real files, no tray contacted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "pythonpath"), ANSIBLE_NOCOLOR="1", ANSIBLE_HOST_KEY_CHECKING="False")
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "wideep.gb200.render", *args], env=env, text=True, capture_output=True, check=check, cwd=ROOT
    )


def test_render_example_writes_plan_and_scripts_idempotently(tmp_path: Path) -> None:
    out = tmp_path / "render"
    first = _run("-i", "inventories/gb200", "-e", f"gb200_render_dir={out}")
    plan = json.loads((out / "plan.json").read_text())
    assert sorted(plan["hosts"]) == ["gb200-d0", "gb200-d1", "gb200-head", "gb200-p0", "gb200-p1"]
    scripts = sorted(p.name for p in (out / "hosts").iterdir())
    assert scripts == [f"{h}.sh" for h in sorted(plan["hosts"])]
    assert os.access(out / "hosts" / "gb200-p1.sh", os.X_OK)
    assert "--node-rank 1" in (out / "hosts" / "gb200-p1.sh").read_text()
    assert "changed=1" in first.stdout
    assert "W-ENV-NOOP" in first.stderr + first.stdout  # the seed's no-op variables are called out
    second = _run("-i", "inventories/gb200", "-e", f"gb200_render_dir={out}")
    assert "changed=0" in second.stdout


def test_invalid_inventory_writes_nothing(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text((ROOT / "inventories/gb200/hosts.yml").read_text().replace("ansible_host: 10.0.0.12", "ansible_host: tray-p1"))
    out = tmp_path / "render"
    result = _run(
        "-i", str(inventory), "-e", f"gb200_render_dir={out}", "-e", "gb200_frontend_port=29500", "-e", '{"gb200_decode_args": {"node-rank": 2}}', check=False
    )
    assert result.returncode != 0
    text = result.stdout + result.stderr
    assert "[E-BAD-IP] host gb200-p1: ansible_host: 'tray-p1'" in text
    assert "[E-OWNED-FLAG] group decode_0: gb200_decode_args['node-rank']" in text
    assert not out.exists()


@pytest.mark.parametrize("check_flag", ["--check"])
def test_check_mode_writes_nothing(tmp_path: Path, check_flag: str) -> None:
    out = tmp_path / "render"
    result = _run("-i", "inventories/gb200", "-e", f"gb200_render_dir={out}", check_flag)
    assert "changed=1" in result.stdout
    assert not (out / "plan.json").exists()
