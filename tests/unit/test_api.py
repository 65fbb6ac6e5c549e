"""The wideep_gb200 API: real ansible-runner runs of the collection's playbooks on localhost (no
tray, no Docker): the plan, typed errors, failed runs, live events, and secrets kept out."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from wideep_gb200 import (
    InvalidInputError,
    PlayStart,
    Problem,
    Progress,
    RunFailedError,
    TaskEnd,
    TaskStart,
    Transfer,
    deploy,
    plan,
    playbooks,
    render,
    run,
)
from wideep_gb200._run import _Capture

from ansible_collections.wideep.gb200.plugins.plugin_utils import events as collection_events

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "inventories" / "gb200"
TOKEN = "hf_wideepTestSecret_5b7e1c0d9a"


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    return tmp_path / "artifacts"


def test_plan_is_the_plan_the_collection_renders(tmp_path: Path, artifacts: Path) -> None:
    p = plan(INVENTORY, artifacts_dir=artifacts)
    assert (p.recipe, p.engine) == ("dsr1-fp8", "sglang")
    assert p.engine_versions == {"dynamo": "1.6.1", "sglang": "0.5.21", "image": "nvcr.io/nvidia/ai-dynamo/sglang-runtime:1.6.1"}
    assert p.frontend_url == "http://10.0.0.10:8000"
    assert [(w.name, w.role, w.hosts) for w in p.workers] == [
        ("prefill_0", "prefill", ("gb200-p0", "gb200-p1")),
        ("decode_0", "decode", ("gb200-d0", "gb200-d1")),
    ]
    tray = p.trays["gb200-p1"]
    assert (tray.worker, tray.role, tray.rank, tray.nnodes, tray.address) == ("prefill_0", "prefill", 1, 2, "10.0.0.12")
    assert tray.argv is not None and tray.argv[tray.argv.index("--node-rank") + 1] == "1"
    assert tray.engine == {"sglang": "0.5.21", "dynamo": "1.6.1"}
    assert [c["name"] for c in tray.containers] == ["wideep-prefill_0-rank1"]
    assert p.warnings == ()
    # The same plan the render playbook writes, key for key.
    render(INVENTORY, tmp_path / "render", artifacts_dir=artifacts)
    assert p.raw == json.loads((tmp_path / "render" / "plan.json").read_text())


def test_plan_warnings_are_structured(artifacts: Path) -> None:
    p = plan(INVENTORY, {"gb200_recipe": "dsr1-fp8-wideep"}, artifacts_dir=artifacts)
    assert {w.code for w in p.warnings} == {"W-ENV-NOOP", "W-ENV-MOONCAKE"}
    assert all(w.severity == "warning" and w.fix and w.variable for w in p.warnings)


def test_invalid_input_carries_every_problem_as_the_plan_code_reports_it(artifacts: Path) -> None:
    bad = {"gb200_engine": "vllm", "gb200_prefill_args": {"tp-size": 5}, "gb200_decode_args": {"node-rank": 1}}
    with pytest.raises(InvalidInputError) as caught:
        plan(INVENTORY, bad, artifacts_dir=artifacts)
    problems = caught.value.problems
    assert Problem("E-BAD-ENGINE", "inventory", "gb200_engine", "'vllm' is not an engine", "use one of: sglang, mocker") in problems
    assert {"E-TP-NODES", "E-DEEPEP-EP", "E-OWNED-FLAG"} <= {p.code for p in problems}
    owned = next(p for p in problems if p.code == "E-OWNED-FLAG")
    assert (owned.where, owned.variable) == ("group decode_0", "gb200_decode_args['node-rank']")
    # Fields, not text: no field carries another field's rendering.
    assert all(p.severity == "error" and p.fix and not p.message.startswith("[") and "Fix:" not in p.message for p in problems)


def test_a_missing_inventory_path_is_invalid_input_and_runs_nothing(tmp_path: Path, artifacts: Path) -> None:
    with pytest.raises(InvalidInputError) as caught:
        deploy(tmp_path / "inventories" / "gb2000", "serve", artifacts_dir=artifacts)
    assert [p.code for p in caught.value.problems] == ["E-INVENTORY-MISSING"]
    assert isinstance(caught.value, ValueError)  # invalid input is a ValueError to callers that catch those
    assert "gb2000 does not exist" in caught.value.problems[0].message
    assert not artifacts.exists()


def test_an_inventory_that_names_no_trays_is_invalid_input(tmp_path: Path, artifacts: Path) -> None:
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    somewhere: {}\n")
    with pytest.raises(InvalidInputError) as caught:
        deploy(tmp_path / "hosts.yml", "serve", artifacts_dir=artifacts)
    assert [p.code for p in caught.value.problems] == ["E-NO-TRAYS"]
    assert "names no trays" in caught.value.problems[0].message


def test_playbooks_come_from_the_collection(artifacts: Path) -> None:
    assert playbooks() == tuple(sorted(p.stem for p in (ROOT / "playbooks").glob("*.yml")))
    assert {"site", "provision", "stage", "serve", "status", "teardown", "validate", "render"} <= set(playbooks())
    with pytest.raises(InvalidInputError) as caught:
        run("deploy-everything", INVENTORY, artifacts_dir=artifacts)
    assert caught.value.problems[0].code == "E-UNKNOWN-PLAYBOOK"
    assert "stage" in caught.value.problems[0].fix
    with pytest.raises(ValueError, match="deploy runs one of site, provision, stage, serve"):
        deploy(INVENTORY, "render")


def test_events_stream_while_the_run_goes_on(tmp_path: Path, artifacts: Path) -> None:
    out = tmp_path / "render"
    seen: list[Any] = []
    plan_json_at: dict[str, bool] = {}

    def on_event(event: Any) -> None:
        seen.append(event)
        if isinstance(event, TaskStart | TaskEnd) and event.task.startswith("Write plan.json"):
            plan_json_at[type(event).__name__] = (out / "plan.json").exists()

    result = render(INVENTORY, out, on_event=on_event, artifacts_dir=artifacts)
    assert result.ok and result.changed
    # Delivered as it happened: before the write task ran nothing was written, after it was.
    assert plan_json_at == {"TaskStart": False, "TaskEnd": True}
    assert isinstance(seen[0], PlayStart)
    ends = [e for e in seen if isinstance(e, TaskEnd)]
    starts = [(e.host, e.task) for e in seen if isinstance(e, TaskStart)]
    assert ends and all((e.host, e.task) in starts for e in ends)
    assert all(e.duration_s is not None and e.duration_s >= 0 for e in ends)
    statuses = {e.task: e.status for e in ends}
    assert statuses["Compute and validate the gb200 plan for every tray"] == "ok"
    assert next(s for t, s in statuses.items() if t.startswith("Write plan.json")) == "changed"
    assert result.hosts["localhost"].changed == sum(1 for e in ends if e.status == "changed")


def test_a_failed_run_raises_with_the_recap_the_failed_task_and_the_artifacts(tmp_path: Path, artifacts: Path) -> None:
    busy = tmp_path / "notes"
    busy.mkdir()
    (busy / "mine.txt").write_text("not a render\n")
    with pytest.raises(RunFailedError) as caught:
        render(INVENTORY, busy, artifacts_dir=artifacts)
    error = caught.value
    assert not error.result.ok and error.result.status == "failed"
    assert error.hosts["localhost"].failed == 1
    [failure] = error.failures
    assert failure.host == "localhost" and failure.action == "wideep.gb200.render"
    assert str(busy) in failure.message
    assert error.duration_s > 0
    assert error.artifacts.parent == artifacts and (error.artifacts / "job_events").is_dir()
    assert (busy / "mine.txt").read_text() == "not a render\n"


def _files_holding(root: Path, needle: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_secrets_never_reach_events_results_or_artifacts(tmp_path: Path, artifacts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIDEEP_TEST_SHELL_TOKEN", TOKEN)  # a token the caller's shell exports
    secret_vars = {"gb200_secret_env": {"HF_TOKEN": TOKEN, "NGC_API_KEY": TOKEN}, "registry_password": TOKEN}
    seen: list[Any] = []
    result = render(INVENTORY, tmp_path / "render", secret_vars, on_event=seen.append, artifacts_dir=artifacts)
    assert result.ok
    assert result.plan is not None and result.plan.raw["hosts"]["gb200-p0"]["containers"][0]["secret_env"] == ["HF_TOKEN", "NGC_API_KEY"]
    with pytest.raises(InvalidInputError) as invalid:
        plan(INVENTORY, {**secret_vars, "gb200_engine": "vllm"}, artifacts_dir=artifacts)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("not a render\n")
    with pytest.raises(RunFailedError) as failed:
        render(INVENTORY, busy, secret_vars, on_event=seen.append, artifacts_dir=artifacts)
    texts = [
        repr(seen),
        json.dumps(result.to_dict()),
        repr(result),
        str(invalid.value),
        repr(invalid.value.problems),
        str(failed.value),
        json.dumps(failed.value.result.to_dict()),
    ]
    assert not [t for t in texts if TOKEN in t]
    assert len(list(artifacts.iterdir())) == 3 and not _files_holding(artifacts, TOKEN)
    assert not _files_holding(tmp_path / "render", TOKEN)
    # The extra-vars file lived in a private directory that is gone.
    command = json.loads((result.artifacts / "command").read_text())
    vars_file = Path(command["command"][command["command"].index("--extra-vars") + 1].lstrip("@"))
    assert not vars_file.parent.exists()
    assert "env" not in command


def test_progress_records_become_events_of_the_task_running_on_that_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    channel = tmp_path / "events.jsonl"
    monkeypatch.setenv(collection_events.EVENTS_ENV, str(channel))
    seen: list[Any] = []
    capture = _Capture(on_event=seen.append, events_file=channel)
    capture.drain_transfers()  # nothing yet: no file
    for host in ("gb200-p1", "gb200-d0"):
        capture({"event": "runner_on_start", "event_data": {"host": host, "task": "Wait for every receiver", "role": "broadcast", "task_uuid": "u1"}})
    collection_events.emit("progress", host="gb200-p1", position=2**30, total=4 * 2**30, rate_bytes_per_s=5e8, eta_s=6, state="relaying")
    with channel.open("a") as stream:
        stream.write('{"kind": "progress", "host": "gb200-d0"')  # a record still being written
    capture({"event": "verbose", "event_data": {}})
    assert seen[-1] == Transfer("gb200-p1", "Wait for every receiver", "broadcast", 2**30, 4 * 2**30, 5e8, 6.0, "relaying")
    assert seen[-1].fraction == 0.25
    with channel.open("a") as stream:
        stream.write(', "position": 0, "total": 10, "rate_bytes_per_s": 0, "eta_s": null, "state": "waiting"}\n')
    collection_events.emit("progress", host="gb200-d0", line="compiling 3/8 configurations, 41 files")
    capture.drain_transfers()
    assert seen[-2:] == [
        Transfer("gb200-d0", "Wait for every receiver", "broadcast", 0, 10, 0.0, None, "waiting"),
        Progress("gb200-d0", "Wait for every receiver", "broadcast", "compiling 3/8 configurations, 41 files"),
    ]
    monkeypatch.delenv(collection_events.EVENTS_ENV)
    collection_events.emit("progress", host="x")  # no channel set: writes nothing
    assert len(channel.read_text().splitlines()) == 3


def test_an_artifacts_folder_defaults_to_the_state_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from wideep_gb200._run import default_artifacts_dir

    monkeypatch.delenv("WIDEEP_ARTIFACTS", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_artifacts_dir() == tmp_path / "wideep-gb200" / "runs"
    monkeypatch.setenv("WIDEEP_ARTIFACTS", os.fspath(tmp_path / "mine"))
    assert default_artifacts_dir() == tmp_path / "mine"
