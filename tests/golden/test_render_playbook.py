"""wideep.gb200.render end to end: real ansible-playbook, real files, no tray contacted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, check: bool = True, cwd: Path = ROOT, playbook: str = "wideep.gb200.render") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "pythonpath"), ANSIBLE_NOCOLOR="1", ANSIBLE_HOST_KEY_CHECKING="False")
    command = [str(Path(sys.executable).parent / "ansible-playbook"), playbook, *args]
    return subprocess.run(command, env=env, text=True, capture_output=True, check=check, cwd=cwd)


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
    assert (out / "plan.json").stat().st_mode & 0o777 == 0o600
    assert (out / "hosts" / "gb200-p1.sh").stat().st_mode & 0o777 == 0o700
    assert out.stat().st_mode & 0o777 == 0o700
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


def _three_decode_trays(tmp_path: Path) -> Path:
    """The example inventory with a third decode tray (EP 12 divides 288 experts)."""
    data = yaml.safe_load((ROOT / "inventories/gb200/hosts.yml").read_text())
    gb200 = data["all"]["children"]["gb200"]
    gb200["hosts"]["gb200-d2"] = {"ansible_host": "10.0.0.15"}
    gb200["children"]["decode"]["children"]["decode_0"]["hosts"]["gb200-d2"] = None
    inventory = tmp_path / "hosts3.yml"
    inventory.write_text(yaml.safe_dump(data))
    return inventory


def test_a_smaller_render_removes_the_scripts_of_trays_that_left(tmp_path: Path) -> None:
    out = tmp_path / "render"
    (tmp_path / "g").mkdir()
    bigger = _three_decode_trays(tmp_path / "g")
    _run("-i", str(bigger), "-e", f"gb200_render_dir={out}")
    assert (out / "hosts" / "gb200-d2.sh").exists(), "the bigger inventory must really have a third decode tray"
    _run("-i", "inventories/gb200", "-e", f"gb200_render_dir={out}")
    assert sorted(p.name for p in (out / "hosts").iterdir()) == ["gb200-d0.sh", "gb200-d1.sh", "gb200-head.sh", "gb200-p0.sh", "gb200-p1.sh"]


def test_a_relative_render_dir_is_relative_to_where_the_command_runs(tmp_path: Path) -> None:
    _run("-i", str(ROOT / "inventories/gb200"), "-e", "gb200_render_dir=rel/render", cwd=tmp_path)
    assert (tmp_path / "rel" / "render" / "plan.json").is_file()
    assert not (ROOT / "playbooks" / "rel").exists()


def test_render_refuses_a_directory_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = _run("-i", "inventories/gb200", "-e", f"gb200_render_dir={tmp_path}", check=False)
    assert result.returncode != 0
    assert "was not written by render" in result.stdout + result.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("playbook", ["wideep.gb200.validate", "wideep.gb200.render"])
def test_an_inventory_that_names_no_trays_fails_saying_so(tmp_path: Path, playbook: str) -> None:
    result = _run("-i", str(tmp_path / "no-such-inventory"), "-e", f"gb200_render_dir={tmp_path}/out", check=False, playbook=playbook)
    assert result.returncode != 0
    assert "the inventory names no trays" in result.stdout
    assert "no-such-inventory" in result.stdout


SECRET = "hf_wideepTESTsecret0123456789"


def test_a_secret_never_reaches_the_render_or_the_output(tmp_path: Path) -> None:
    out = tmp_path / "render"
    extra = tmp_path / "secret.yml"
    extra.write_text(f"gb200_secret_env:\n  HF_TOKEN: {SECRET}\n")
    result = _run("-vvv", "-i", "inventories/gb200", "-e", f"@{extra}", "-e", f"gb200_render_dir={out}")
    assert SECRET not in result.stdout + result.stderr
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(), path
    worker = next(c for c in json.loads((out / "plan.json").read_text())["hosts"]["gb200-d0"]["containers"] if c["kind"] == "worker")
    assert worker["secret_env"] == ["HF_TOKEN"]
    assert worker["env_file"] == "/etc/wideep/secrets/wideep-decode_0-rank0.env"
    assert f"--env-file {worker['env_file']}" in (out / "hosts" / "gb200-d0.sh").read_text()
    # The plan fact is not dumped even at -vvv (it would print every tray's command).
    assert '"argv"' not in result.stdout


def test_a_credential_in_plain_env_is_refused_without_printing_it(tmp_path: Path) -> None:
    extra = tmp_path / "env.yml"
    extra.write_text(f"gb200_decode_env:\n  HF_TOKEN: {SECRET}\n")
    result = _run("-vvv", "-i", "inventories/gb200", "-e", f"@{extra}", "-e", f"gb200_render_dir={tmp_path}/out", check=False)
    assert result.returncode != 0
    assert "[E-SECRET-IN-ENV] group decode_0: gb200_decode_env['HF_TOKEN']" in result.stdout
    assert "move it to gb200_secret_env" in result.stdout
    assert SECRET not in result.stdout + result.stderr
