"""wideep.gb200.logs and the smoke gate's triage on the emulated cluster.

A failed bring-up must end with a triage table that names the cause and the fix: a listener holds
prefill rank 0's bootstrap port on its tray (a port already in use, a real failure of real
software: Dynamo's mocker cannot bind it), serve recreates that worker, the smoke gate fails and
its triage names PORT_IN_USE on that tray (the mocker logs "Failed to start mocker engine: Address
already in use (os error 98)" and registers anyway, so the gate fails on its completion). Then `logs` collects every tray into one archive,
bounded per tray and scrubbed of the inventory's HF_TOKEN, which the test writes into a running
container's log on purpose. The cluster is converged again at the end, whatever happened.
"""

from __future__ import annotations

import json
import shlex
import tarfile
from pathlib import Path
from typing import Any

from cluster_helpers import Tray, run_playbook

# Small on purpose: the archive's bound is checked, not only its presence.
MAX_BYTES = 60000
SMOKE_TIMEOUT = 60


def _token(inventory: dict[str, Any]) -> str:
    token = str(inventory["_meta"]["hostvars"]["tray1"]["gb200_secret_env"]["HF_TOKEN"])
    assert token.startswith("hf_"), "the emulated inventory's secret is the test's subject"
    return token


def _hold_port(tray: Tray, port: int) -> str:
    """A listener on PORT on the tray (its host network, where the workers bind); its pid."""
    script = (
        "import socket, time\n"
        "s = socket.socket()\n"
        # the worker that held the port leaves TIME-WAIT connections behind
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        f"s.bind(('0.0.0.0', {port}))\n"
        "s.listen(1)\n"
        "time.sleep(900)\n"
    )
    # setsid: the listener outlives the SSH session that starts it.
    result = tray.host.run(f"setsid nohup python3 -c {shlex.quote(script)} >/dev/null 2>&1 </dev/null & echo $!")
    assert result.rc == 0, result.stderr
    pid = result.stdout.strip()
    assert tray.host.run(f"for i in $(seq 50); do ss -ltn | grep -q ':{port} ' && exit 0; sleep 0.1; done; exit 1").rc == 0, f"nothing listens on {port}"
    return pid


def _archive(directory: Path) -> tuple[Path, dict[str, bytes]]:
    archives = sorted(directory.glob("*.tar.gz"))
    assert len(archives) == 1, f"one archive expected in {directory}: {archives}"
    files: dict[str, bytes] = {}
    with tarfile.open(archives[0]) as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            if handle is not None:
                files[member.name.split("/", 1)[1]] = handle.read()
    return archives[0], files


def test_a_held_port_is_named_by_triage_and_logs_archives_every_tray_bounded_and_scrubbed(
    plan: dict[str, Any], trays: dict[str, Tray], inventory: dict[str, Any], tmp_path: Path
) -> None:
    token = _token(inventory)
    prefill = next(w for w in plan["workers"] if w["role"] == "prefill")
    host, port = prefill["hosts"][0], int(prefill["bootstrap_port"])
    worker = next(c["name"] for c in plan["hosts"][host]["containers"] if c["kind"] == "worker")
    decode = next(w for w in plan["workers"] if w["role"] == "decode")
    decode_host = decode["hosts"][0]
    decode_worker = next(c["name"] for c in plan["hosts"][decode_host]["containers"] if c["kind"] == "worker")
    tray = trays[host]
    # The secret in a running container's log, as a careless engine would print it.
    trays[decode_host].docker("exec", decode_worker, "sh", "-c", f"echo 'debug: HF_TOKEN={token} Authorization: Bearer {token}' > /proc/1/fd/1")

    pid = ""
    try:
        tray.docker("rm", "--force", worker)
        pid = _hold_port(tray, port)
        smoke_dir = tmp_path / "smoke"
        run = run_playbook("serve", "-e", f"smoke_timeout={SMOKE_TIMEOUT}", "-e", f"gb200_logs_dir={smoke_dir}", "-vv")
        assert run.rc != 0, "serve must fail while the bootstrap port is held:\n" + run.describe()
        # The gate's table names the cause, the tray and the fix, and the run still fails as the gate does.
        assert "likely cause: PORT_IN_USE" in run.output, run.describe(120)
        assert "ss -ltnp" in run.output
        assert token not in run.output, "the secret reached the playbook's output"
        findings = json.loads((smoke_dir / "triage.json").read_text(encoding="utf-8"))
        # The cause comes first; the worker that could not bind is named with its tray (the
        # frontend, which relays the worker's error, may be named too).
        assert findings[0]["code"] == "PORT_IN_USE", findings
        mine = [f for f in findings if (f["code"], f["host"], f["container"]) == ("PORT_IN_USE", host, worker)]
        assert mine, findings
        assert any("Address already in use" in line for line in mine[0]["evidence"]), mine
        assert mine[0]["fix"]

        logs_dir = tmp_path / "logs"
        run = run_playbook("logs", "-e", f"gb200_logs_dir={logs_dir}", "-e", f"logs_max_bytes={MAX_BYTES}", "-vv")
        assert run.rc == 0, run.describe()
        assert "likely cause: PORT_IN_USE" in run.output, run.describe(60)
        assert token not in run.output, "the secret reached the logs playbook's output"
        assert all(counts.get("changed", 0) == 0 for name, counts in run.recap.items() if name != "localhost"), run.recap
    finally:
        # Restore, whatever happened: nothing holds the port, the worker that could not bind is
        # removed (it runs on, unable to serve), serve starts it again.
        if pid:
            tray.host.run(f"kill {pid}")
        tray.host.run(f"docker rm --force {worker}")
        restored = run_playbook("serve")
    assert restored.rc == 0, restored.describe()

    archive, files = _archive(logs_dir)
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    # Every tray, every labelled container (all ranks), and the shared files.
    for name, t in trays.items():
        for container in t.labelled_containers():
            assert f"{name}/{container}.log" in files, f"{name}/{container}.log missing: {sorted(files)}"
        for part in ("inspect.json", "docker-info.json", "images.json"):
            assert f"{name}/{part}" in files, f"{name}/{part} missing"
    for part in ("plan.json", "control_plane.json", "triage.json", "triage.txt", "MANIFEST.json"):
        assert part in files, part
    for name in (h for w in plan["workers"] for h in w["hosts"]):
        assert f"{name}/preflight.json" in files, f"{name}: preflight facts missing"
    # State and exit code of the broken worker, the control plane's state, the engine the image reports.
    inspect = json.loads(files[f"{host}/inspect.json"])
    assert inspect[worker]["state"]["Status"] in ("exited", "restarting", "running"), inspect[worker]["state"]
    assert "ExitCode" in inspect[worker]["state"]
    control = json.loads(files["control_plane.json"])
    assert control["etcd"]["healthy"] is True and control["etcd"]["members"] == 1 and control["etcd"]["keys"] > 0, control
    assert control["nats"]["healthy"] is True and control["frontend"]["reachable"] is True, control
    images = json.loads(files[f"{decode_host}/images.json"])
    assert images["engines"] and images["engines"][0]["dynamo"] == plan["engine_versions"]["dynamo"], images
    assert json.loads(files["plan.json"])["hosts"].keys() == plan["hosts"].keys()
    # The triage in the archive names the same cause.
    archived = json.loads(files["triage.json"])
    assert archived[0]["code"] == "PORT_IN_USE"
    assert any((f["code"], f["host"], f["container"]) == ("PORT_IN_USE", host, worker) for f in archived), archived
    assert json.loads((logs_dir / "triage.json").read_text(encoding="utf-8")) == archived
    # Bounded: per tray, the logs fit MAX_BYTES (plus one line's slack for the trailing newline per file).
    for name in trays:
        size = sum(len(data) for path, data in files.items() if path.startswith(f"{name}/") and path.endswith(".log"))
        assert size <= MAX_BYTES + 8, f"{name}: {size} bytes of logs"
    manifest = json.loads(files["MANIFEST.json"])
    assert manifest["limits"]["max_bytes_per_tray"] == MAX_BYTES
    assert set(manifest["hosts"]) == set(trays) and manifest["not_collected"] == []
    # Scrubbed: the token is nowhere, its marker is where it was written.
    leaked = [path for path, data in files.items() if token.encode() in data]
    assert not leaked, f"the secret is in {leaked}"
    decode_log = files[f"{decode_host}/{decode_worker}.log"].decode()
    assert "HF_TOKEN=[REDACTED:HF_TOKEN]" in decode_log and "Bearer [REDACTED" in decode_log
    env = json.loads(files[f"{decode_host}/inspect.json"])[decode_worker]["inspect"]["Config"]["Env"]
    assert "HF_TOKEN=[REDACTED]" in env or not any(e.startswith("HF_TOKEN=") for e in env), env
