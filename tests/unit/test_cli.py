"""The `wideep` command: exit codes (0 success, 1 failed run, 2 invalid input), --json output,
and commands for the collection's playbooks as they are added. Real runs on localhost, no tray."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from wideep_gb200 import _collection, _run, cli

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = str(ROOT / "inventories" / "gb200")


def _main(capsys: pytest.CaptureFixture[str], tmp_path: Path, *argv: str) -> tuple[int, str, str]:
    code = cli.main([*argv, "--artifacts", str(tmp_path / "artifacts")] if argv and argv[0] != "playbooks" else list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_valid_input_exits_0_and_plan_json_is_the_plan(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _err = _main(capsys, tmp_path, "plan", "-i", INVENTORY, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["recipe"] == "dsr1-fp8" and data["trays"]["gb200-d1"]["rank"] == 1
    assert sorted(data["plan"]["hosts"]) == sorted(data["trays"])
    code, out, _err = _main(capsys, tmp_path, "validate", "-i", INVENTORY, "-e", "gb200_recipe=dsr1-fp8-wideep")
    assert code == 0 and "valid: recipe dsr1-fp8-wideep, 2 worker(s) on 4 tray(s), 3 warning(s)" in out and "[W-ENV-NOOP]" in out


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["validate", "-i", "inventories/does-not-exist"], "E-INVENTORY-MISSING"),
        (["plan", "-i", INVENTORY, "-e", '{"gb200_engine": "vllm"}'], "E-BAD-ENGINE"),
        (["deploy", "serve", "-i", INVENTORY, "-e", "@/nonexistent/vars.yml"], None),
        (["validate", "-i", INVENTORY, "-e", "gb200_recipe"], None),
        (["deploy", "render", "-i", INVENTORY], None),
        (["frobnicate"], None),
    ],
)
def test_invalid_input_exits_2_and_changes_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], code: str | None) -> None:
    exit_code, out, err = _main(capsys, tmp_path, *argv)
    assert exit_code == 2, out + err
    if code:
        assert f"[{code}]" in err
        exit_code, out, _err = _main(capsys, tmp_path, *argv, "--json")
        data = json.loads(out)
        assert exit_code == 2 and data["error"] == "invalid_input" and data["problems"][0]["code"] == code


def test_an_inventory_without_trays_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    laptop: {}\n")
    exit_code, out, _err = _main(capsys, tmp_path, "teardown", "-i", str(tmp_path / "hosts.yml"), "--json")
    assert exit_code == 2 and json.loads(out)["problems"][0]["code"] == "E-NO-TRAYS"


def test_a_failed_run_exits_1_with_the_failed_task(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine\n")
    exit_code, out, _err = _main(capsys, tmp_path, "render", "-i", INVENTORY, "-o", str(busy), "--json")
    data = json.loads(out)
    assert exit_code == 1
    assert data["error"] == "run_failed" and data["ok"] is False and data["hosts"]["localhost"]["failed"] == 1
    assert data["failures"][0]["host"] == "localhost" and str(busy) in data["failures"][0]["message"]
    assert Path(data["artifacts"]).is_dir()
    exit_code, _out, err = _main(capsys, tmp_path, "render", "-i", INVENTORY, "-o", str(busy))
    assert exit_code == 1 and "FAILED localhost" in err and "render: FAILED" in err


def test_render_exits_0_with_a_recap(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    exit_code, out, _err = _main(capsys, tmp_path, "render", "-i", INVENTORY, "-o", str(tmp_path / "render"))
    assert exit_code == 0 and "render: ok" in out and (tmp_path / "render" / "hosts" / "gb200-p0.sh").is_file()


def test_a_playbook_added_to_the_collection_is_a_command(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What happens when another branch adds playbooks/logs.yml: `wideep logs` exists and runs it."""
    collections = tmp_path / "collections"
    collection = collections / "ansible_collections" / "wideep" / "gb200"
    collection.mkdir(parents=True)
    for entry in ROOT.iterdir():
        if entry.name in ("playbooks", "plugins", "roles", "recipes", "engines", "meta", "galaxy.yml"):
            (collection / entry.name).symlink_to(entry)
    (collection / "playbooks").unlink()
    shutil.copytree(ROOT / "playbooks", collection / "playbooks")
    (collection / "playbooks" / "logs.yml").write_text(
        "---\n- name: Gather logs\n  hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - name: Say where\n      ansible.builtin.debug:\n        msg: logs of {{ groups['gb200'] | length }} trays\n"
    )
    monkeypatch.setattr(_collection, "collections_path", lambda: collections)
    monkeypatch.setattr(_run, "collections_path", lambda: collections)
    assert "logs" in _collection.playbooks()
    exit_code, out, _err = _main(capsys, tmp_path, "playbooks")
    assert exit_code == 0 and "logs" in out.split()
    exit_code, out, _err = _main(capsys, tmp_path, "logs", "-i", INVENTORY, "--json")
    data = json.loads(out)
    assert exit_code == 0 and data["playbook"] == "logs" and data["ok"] and data["hosts"]["localhost"]["ok"] == 1
