"""Weights on the emulated cluster, through the real role (wideep.gb200.stage), after converge.

Named test_10b_* so that they run after the serving tests and before teardown (test_11);
the cluster's conftest orders tests by name.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cluster_helpers import ROOT, Tray, run_playbook

SOURCE = "/srv/wideep-source/DeepSeek-R1"


def sha256s(tray: Tray, directory: str) -> dict[str, str]:
    out = tray.host.run(f"cd {directory} && find . -path ./.wideep -prune -o -type f -print0 | xargs -0 sha256sum")
    assert out.rc == 0, out.stderr
    return {line.split(None, 1)[1].removeprefix("./"): line.split(None, 1)[0] for line in out.stdout.splitlines()}


@pytest.fixture(scope="module")
def weight_trays(plan: dict[str, Any], trays: dict[str, Tray]) -> list[Tray]:
    return [trays[h] for w in plan["workers"] for h in w["hosts"]]


@pytest.fixture(scope="module")
def model_dir(plan: dict[str, Any]) -> str:
    return str(plan["model"]["host_dir"])


def test_every_worker_tray_holds_a_verified_copy(weight_trays: list[Tray], trays: dict[str, Tray], model_dir: str) -> None:
    source = sha256s(trays["tray0"], SOURCE)
    assert len(source) >= 60
    for tray in weight_trays:
        assert sha256s(tray, model_dir) == source, f"{tray.name}: differs from the source"
        assert tray.host.file(f"{model_dir}/.wideep/COMPLETE").exists
        assert tray.host.run(f"find {model_dir}/.wideep/partial -type f 2>/dev/null | wc -l").stdout.strip() == "0"


def test_a_rerun_moves_nothing() -> None:
    started = time.monotonic()
    run = run_playbook("stage")
    elapsed = time.monotonic() - started
    assert run.rc == 0, run.describe()
    assert "this pass moved nothing" in run.output
    assert "Start the source" not in run.output
    assert all(counters["changed"] == 0 for counters in run.recap.values()), run.describe()
    assert elapsed < 60


def test_a_corrupted_shard_is_fetched_again(weight_trays: list[Tray], trays: dict[str, Tray], model_dir: str) -> None:
    victim = weight_trays[-1]
    shard = sorted(p for p in sha256s(victim, model_dir) if p.endswith(".safetensors"))[3]
    victim.host.run(f"printf 'X' | dd of={model_dir}/{shard} bs=1 seek=4096 conv=notrunc status=none")
    run = run_playbook("stage")
    assert run.rc == 0, run.describe()
    assert run.recap[victim.name]["changed"] > 0, run.describe()  # removed as corrupt, then streamed
    assert all(c["changed"] == 0 for h, c in run.recap.items() if h not in (victim.name, "tray0")), run.describe()
    assert sha256s(victim, model_dir)[shard] == sha256s(trays["tray0"], SOURCE)[shard]


def test_a_tray_killed_mid_transfer_catches_up(weight_trays: list[Tray], trays: dict[str, Tray], model_dir: str) -> None:
    """Every tray loses its copy; the relay on the second tray is killed at about half way.

    The others finish in the same pass (the dead tray is bypassed); the next pass resumes the
    killed tray from its verified prefix and it ends with a full, verified copy.
    """
    for tray in weight_trays:
        tray.host.run(f"rm -rf {model_dir}")
    victim = weight_trays[1]
    total = len(sha256s(trays["tray0"], SOURCE))
    killed: list[str] = []

    def kill_at_half() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            progress = victim.host.run(f"cat {model_dir}/.wideep/progress.json 2>/dev/null")
            try:
                data = json.loads(progress.stdout)
            except ValueError:
                data = {}
            if data.get("total") and data.get("position", 0) >= data["total"] // 2:
                out = victim.host.run("pkill -9 -x wideep-relay")
                killed.append(f"pkill rc={out.rc} at {data['position']}/{data['total']}")
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_at_half, daemon=True)
    killer.start()
    run = run_playbook("stage", "-e", "model_weights_rate_limit=8000000", "-e", "model_weights_idle_timeout=20")
    killer.join()
    assert killed, "the relay was never seen at half way"
    assert killed[0].startswith("pkill rc=0 "), killed  # the relay daemon is found by its name, wideep-relay
    assert run.rc == 0, run.describe()
    assert "bypassed" in run.output, run.describe()
    assert "(pass 2)" in run.output
    source = sha256s(trays["tray0"], SOURCE)
    assert len(source) == total
    for tray in weight_trays:
        assert sha256s(tray, model_dir) == source, f"{tray.name}: not a full verified copy"


def test_a_bad_source_is_refused_with_a_clear_error() -> None:
    run = run_playbook("stage", "-e", '{"model_weights_source": {"type": "path", "path": "/srv/nowhere", "host": "tray0"}}')
    assert run.rc != 0
    assert "model source /srv/nowhere is not a directory on tray0" in run.output, run.describe()


# ----------------------------------------------------------------- type hf, against the Hub double

HUB_REPO = "deepseek-ai/DeepSeek-R1"
HUB_COMMIT = "56d4cbbb4d29f4355bab4b9a39ccb717a14ad5ad"
HUB_TOKEN = "hf_wideepClusterTestToken0123456789abcd"  # the double's, not a secret
HUB_PORT, HUB_CDN_PORT = 8700, 8701
HF_DOWNLOAD, HF_COPY = "/srv/wideep-hf/DeepSeek-R1", "/srv/wideep-hf-copy"


@pytest.fixture
def hub_double(trays: dict[str, Tray]) -> Iterator[Tray]:
    """TEST DOUBLE of the Hugging Face Hub (unreachable here) on tray0, serving the synthetic model
    at HUB_COMMIT with a required token (emulated/hub_double.py); removed afterwards with what the test wrote."""
    head = trays["tray0"]
    script = base64.b64encode((ROOT / "emulated" / "hub_double.py").read_bytes()).decode()
    head.host.check_output(
        f"mkdir -p /opt/wideep-test && echo {script} | base64 -d > /opt/wideep-test/hub_double.py && "
        f"(umask 077 && printf %s {HUB_TOKEN} > /opt/wideep-test/hub-token) && rm -f /opt/wideep-test/hub-requests.jsonl"
    )
    head.host.check_output(
        f"nohup python3 /opt/wideep-test/hub_double.py {SOURCE} --repo {HUB_REPO} --commit {HUB_COMMIT} --host {head.address} "
        f"--port {HUB_PORT} --cdn-port {HUB_CDN_PORT} --token-file /opt/wideep-test/hub-token "
        "--log /opt/wideep-test/hub-requests.jsonl > /opt/wideep-test/hub.log 2>&1 &"
    )
    deadline = time.monotonic() + 30
    while head.host.run(f"curl -s -o /dev/null http://{head.address}:{HUB_PORT}/").rc != 0:
        assert time.monotonic() < deadline, head.host.run("cat /opt/wideep-test/hub.log").stdout
        time.sleep(0.5)
    yield head
    head.host.run("pkill -f /opt/wideep-test/hub_double.py")
    for tray in trays.values():
        tray.host.run(f"rm -rf {HF_DOWNLOAD} {HF_COPY} /var/lib/wideep/manifest-hf-test.json")


def test_a_pinned_hub_commit_is_downloaded_once_and_broadcast(hub_double: Tray, weight_trays: list[Tray], trays: dict[str, Tray]) -> None:
    endpoint = f"http://{hub_double.address}:{HUB_PORT}"
    source = {"type": "hf", "endpoint": endpoint, "repo": HUB_REPO, "revision": HUB_COMMIT, "path": HF_DOWNLOAD, "host": "tray0"}
    extra = json.dumps(
        {
            "model_weights_source": source,
            "model_weights_hf_token": HUB_TOKEN,
            "model_weights_dir": HF_COPY,
            "model_weights_manifest_cache": "/var/lib/wideep/manifest-hf-test.json",
        }
    )
    run = run_playbook("stage", "-v", "-e", extra)
    assert run.rc == 0, run.describe()
    expected = sha256s(trays["tray0"], SOURCE)
    total = sum(int(s) for s in hub_double.host.check_output(f"find {SOURCE} -path '*/.wideep' -prune -o -type f -printf '%s\\n'").split())
    assert f"{total} bytes downloaded" in run.output, run.describe()
    assert sha256s(hub_double, HF_DOWNLOAD) == expected
    for tray in weight_trays:
        assert sha256s(tray, HF_COPY) == expected, f"{tray.name}: not the Hub's files"
    # The token: not in Ansible's output, not in any file the run left on a tray, never sent to the CDN.
    assert HUB_TOKEN not in run.output
    for tray in trays.values():
        found = tray.host.run(f"grep -rlF {HUB_TOKEN} /srv /var/lib/wideep /root/.ansible /root/.ansible_async /tmp 2>/dev/null")
        assert found.stdout.strip() == "", f"{tray.name}: the token is in {found.stdout}"
    requests = [json.loads(line) for line in hub_double.host.check_output("cat /opt/wideep-test/hub-requests.jsonl").splitlines()]
    cdn = [r for r in requests if r["port"] == HUB_CDN_PORT]
    assert cdn and not any(r["authorization"] for r in cdn)

    again = run_playbook("stage", "-e", extra)
    assert again.rc == 0, again.describe()
    assert "0 bytes downloaded" in again.output and "this pass moved nothing" in again.output, again.describe()
    assert all(counters["changed"] == 0 for counters in again.recap.values()), again.describe()


def test_a_hub_source_that_is_not_pinned_is_refused_before_anything_changes() -> None:
    source = {"type": "hf", "repo": HUB_REPO, "revision": "main", "path": HF_DOWNLOAD, "revison": HUB_COMMIT}
    run = run_playbook("stage", "-e", json.dumps({"model_weights_source": source}))
    assert run.rc != 0
    assert "model_weights_source.revision 'main' is not a commit: pin the 40-hex commit id" in run.output, run.describe()
    assert "model_weights_source.revison is not a setting of a hf source" in run.output, run.describe()
    assert all(counters["changed"] == 0 for counters in run.recap.values()), run.describe()
