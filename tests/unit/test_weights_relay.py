"""The weights broadcast on loopback: real TCP, real processes, real files.

Each test runs the same pass the model_weights role runs: inspect every tray, plan the pass,
start the receivers and the source, and check what every tray holds afterwards.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from ansible_module import run_module, run_module_file

from ansible_collections.wideep.gb200.plugins.module_utils import _weights as weights
from ansible_collections.wideep.gb200.plugins.module_utils._relay import Relay
from ansible_collections.wideep.gb200.plugins.plugin_utils.weights.passes import plan_pass

ROOT = Path(__file__).resolve().parents[2]
# Below Linux's ephemeral range (32768-60999): a port there can be taken at any moment by some
# outgoing connection's local end, and the relay's bind then fails (EADDRINUSE).
BASE_PORT = 20000 + os.getpid() % 1000 * 10


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("source")
    subprocess.run([sys.executable, str(ROOT / "emulated" / "make_model.py"), str(path), "--shards", "24", "--shard-bytes", str(1_500_000)], check=True)
    return path


def _receiver(kwargs: dict[str, Any], out: str) -> None:
    result = Relay(**kwargs).run()
    Path(out).write_text(json.dumps(result))


def broadcast(
    source: Path,
    trays: list[Path],
    *,
    action: Any = None,
    rate: int = 0,
    port: int = BASE_PORT,
    stall: float = 10.0,
    lanes: int = 2,
    block: int = 1 << 20,
    page_cache: str = "drop",
    congestion: str = "cubic",
) -> dict[str, Any]:
    manifest = weights.make_manifest(str(source))["files"]
    entries = weights.parse_manifest({"files": manifest})
    infos = {str(t): weights.inspect(str(t), entries) for t in trays}
    plan = plan_pass(
        manifest, infos, {str(t): "127.0.0.1" for t in trays}, source_host="src", source_dir=str(source), source_address="127.0.0.1", port=0, dest=""
    )
    assert not plan["problems"]
    chain = [("127.0.0.1", 0)] + [("127.0.0.1", port + i) for i in range(1, len(plan["receivers"]) + 1)]
    segments = weights.layout(entries, plan["starts"])
    procs = {}
    for host in plan["receivers"]:
        member = plan["members"][host]
        kwargs = {
            "run_id": plan["run_id"],
            "index": member["index"],
            "chain": chain,
            "segments": segments,
            "needs": set(member["needs"]),
            "dest": host,
            "stall_timeout": stall,
            "connect_timeout": 10,
            "idle_timeout": 8,
            "progress_path": f"{host}.progress.json",
            "listen_host": "127.0.0.1",
            "lanes": lanes,
            "block": block,
            "page_cache": page_cache,
            "congestion": congestion,
        }
        # spawn, not fork: a fork of this (threaded) test process can inherit a held lock
        proc = multiprocessing.get_context("spawn").Process(target=_receiver, args=(kwargs, f"{host}.result.json"))
        proc.start()
        procs[host] = proc
    if action:
        threading.Thread(target=action, args=(procs,), daemon=True).start()
    src = Relay(
        run_id=plan["run_id"],
        index=0,
        chain=chain,
        segments=segments,
        needs=set(),
        dest=None,
        source_dir=str(source),
        stall_timeout=stall,
        connect_timeout=10,
        rate_limit=rate,
        lanes=lanes,
        block=block,
        congestion=congestion,
    )
    source_result = src.run() if plan["receivers"] else {"bytes_sent": 0}
    for proc in procs.values():
        proc.join(30)
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
    results = {}
    for host in plan["receivers"]:
        with contextlib.suppress(OSError, ValueError):
            results[host] = json.loads(Path(f"{host}.result.json").read_text())
    return {"plan": plan, "source": source_result, "entries": entries, "receivers": results}


def test_the_relays_send_with_the_congestion_control_asked_for_and_say_when_each_byte_came(source: Path, tmp_path: Path) -> None:
    """congestion: set on every connection a member sends on (reno: in every kernel, allowed to
    anyone); one the kernel lacks keeps its default, and the result names what ran. The clocks
    that make bench-weights splits a pass with come in order along the chain."""
    trays = [tmp_path / f"tray{i}" for i in range(3)]
    first = broadcast(source, trays, port=BASE_PORT + 640, congestion="reno")
    assert held(trays, first["entries"]) == [True] * 3
    src, chain = first["source"], [first["receivers"][str(t)] for t in trays]
    assert src["congestion"] == "reno"
    assert [r["congestion"] for r in chain] == ["reno", "reno", None]  # the tail sends nothing
    assert src["started_at"] <= src["first_byte_at"] <= chain[0]["first_byte_at"]
    for upstream, member in itertools.pairwise(chain):
        assert upstream["first_byte_at"] <= member["first_byte_at"] <= member["last_byte_at"] <= member["finished_at"]
        assert upstream["last_byte_at"] <= member["last_byte_at"]
    assert chain[0]["last_byte_at"] <= src["last_byte_at"] <= src["finished_at"]

    default = Path("/proc/sys/net/ipv4/tcp_congestion_control").read_text().strip()
    again = [tmp_path / f"again{i}" for i in range(2)]
    second = broadcast(source, again, port=BASE_PORT + 670, congestion="nosuchcc")
    assert held(again, second["entries"]) == [True] * 2
    assert second["source"]["congestion"] == default


def kill_at_half(proc: multiprocessing.Process, progress: Path, sig: int) -> None:
    """Signal the relay once its progress file shows half of the stream received."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            data = json.loads(progress.read_text())
        except (OSError, ValueError):
            data = {}
        if data.get("total") and data.get("position", 0) >= data["total"] // 2:
            assert proc.pid is not None
            os.kill(proc.pid, sig)
            return
        time.sleep(0.05)
    raise AssertionError("the relay never reached half way")


def held(trays: list[Path], entries: list[weights.FileEntry]) -> list[bool]:
    return [weights.inspect(str(t), entries, full_verify=True)["complete"] for t in trays]


@pytest.mark.parametrize(("page_cache", "port"), [("drop", BASE_PORT), ("direct", BASE_PORT + 850), ("keep", BASE_PORT + 880)])
def test_every_tray_gets_a_verified_copy_and_a_rerun_moves_nothing(source: Path, tmp_path: Path, page_cache: str, port: int) -> None:
    trays = [tmp_path / f"tray{i}" for i in range(4)]
    first = broadcast(source, trays, page_cache=page_cache, port=port)
    total = sum(e.size for e in first["entries"])
    assert held(trays, first["entries"]) == [True] * 4
    assert first["source"]["bytes_sent"] == total  # the source sends W once, not N times
    for tray in trays:
        for entry in first["entries"]:
            assert (tray / entry.path).read_bytes() == (source / entry.path).read_bytes()
        assert not any((tray / ".wideep" / "partial").rglob("*.safetensors"))
    started = time.monotonic()
    again = broadcast(source, trays, page_cache=page_cache, port=port)
    assert again["plan"]["receivers"] == [] and again["plan"]["stream_bytes"] == 0
    assert again["source"]["bytes_sent"] == 0
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(("lanes", "block"), [(1, 1 << 20), (3, 256 << 10)])
def test_any_number_of_lanes_reassembles_the_stream(source: Path, tmp_path: Path, lanes: int, block: int) -> None:
    trays = [tmp_path / f"tray{i}" for i in range(3)]
    first = broadcast(source, trays, lanes=lanes, block=block, port=BASE_PORT + 700 + lanes * 10)
    assert held(trays, first["entries"]) == [True] * 3
    for entry in first["entries"]:
        assert (trays[2] / entry.path).read_bytes() == (source / entry.path).read_bytes()


def _receive_alone(tmp_path: Path, source: Path, port: int) -> tuple[multiprocessing.Process, str, list[weights.Segment], Path]:
    entries = weights.parse_manifest({"files": weights.make_manifest(str(source))["files"]})
    segments = weights.layout(entries, {e.path: 0 for e in entries})
    tray = tmp_path / "tray"
    kwargs = {
        "run_id": "r1",
        "index": 1,
        "chain": [("127.0.0.1", 0), ("127.0.0.1", port)],
        "segments": segments,
        "needs": {e.path for e in entries},
        "dest": str(tray),
        "connect_timeout": 5,
        "idle_timeout": 5,
        "listen_host": "127.0.0.1",
        "block": 1 << 20,
    }
    proc = multiprocessing.get_context("spawn").Process(target=_receiver, args=(kwargs, f"{tray}.result.json"))
    proc.start()
    return proc, f"{tray}.result.json", segments, tray


def _lane(port: int, hello: dict[str, Any]) -> Any:
    import socket

    deadline = time.monotonic() + 10
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    sock.sendall(b"WIDEEP3 " + json.dumps(hello).encode() + b"\n")
    reply = b""
    while not reply.endswith(b"\n"):
        reply += sock.recv(1)
    assert json.loads(reply)["ok"], reply
    return sock, json.loads(reply)


def test_frames_out_of_order_on_two_lanes_are_reassembled_and_a_corrupted_file_is_not_published(source: Path, tmp_path: Path) -> None:
    """A hand-made upstream (the wire protocol, not our sender): frames in reverse order within
    each pair, over two lanes, with one byte of one file flipped on the wire."""
    import struct

    port = BASE_PORT + 800
    proc, out, segments, tray = _receive_alone(tmp_path, source, port)
    lane0, reply = _lane(port, {"run": "r1", "from": 0, "session": "s", "lanes": 2})
    assert reply["pos"] == 0
    lane1, _reply = _lane(port, {"run": "r1", "from": 0, "session": "s", "lane": 1})
    stream = b"".join((source / s.entry.path).read_bytes() for s in segments)
    victim = segments[3]
    damaged = bytearray(stream)
    damaged[victim.offset + 1234] ^= 0x01
    block = 1 << 20
    frames = [(pos, bytes(damaged[pos : pos + block])) for pos in range(0, len(damaged), block)]
    for first, second in zip(frames[0::2], [*frames[1::2], None], strict=False):
        for pos, data in [f for f in (second, first) if f is not None]:
            sock = lane1 if (pos // block) % 2 else lane0
            sock.sendall(struct.pack(">QI", pos, len(data)) + data)
    lane0.settimeout(20)
    assert lane0.recv(1) == b"K"
    proc.join(30)
    result = json.loads(Path(out).read_text())
    assert result["state"] == "incomplete"
    assert list(result["failed"]) == [victim.entry.path]
    assert not (tray / victim.entry.path).exists()
    assert sorted(result["published"]) == sorted(s.entry.path for s in segments if s is not victim)
    for segment in segments:
        if segment is not victim:
            assert (tray / segment.entry.path).read_bytes() == (source / segment.entry.path).read_bytes()


@pytest.mark.parametrize(("page_cache", "port"), [("drop", BASE_PORT + 100), ("direct", BASE_PORT + 860)])
def test_a_killed_tray_is_bypassed_and_caught_up_by_the_next_pass(source: Path, tmp_path: Path, page_cache: str, port: int) -> None:
    trays = [tmp_path / f"tray{i}" for i in range(4)]

    def kill_second(procs: dict[str, multiprocessing.Process]) -> None:
        kill_at_half(procs[str(trays[1])], Path(f"{trays[1]}.progress.json"), signal.SIGKILL)

    first = broadcast(source, trays, action=kill_second, rate=12_000_000, port=port, page_cache=page_cache)
    total = sum(e.size for e in first["entries"])
    assert held(trays, first["entries"]) == [True, False, True, True]  # the others did not wait for it
    missing = weights.inspect(str(trays[1]), first["entries"])["missing_bytes"]
    assert 0 < missing < total
    second = broadcast(source, trays, port=port + 100 if page_cache == "drop" else port + 5, page_cache=page_cache)
    assert second["plan"]["receivers"] == [str(trays[1])]
    # resume: at most one chunk per partial file more than what was missing
    assert missing <= second["plan"]["stream_bytes"] <= missing + weights.CHUNK
    assert held(trays, first["entries"]) == [True] * 4


def test_a_stalled_tray_is_bypassed(source: Path, tmp_path: Path) -> None:
    trays = [tmp_path / f"tray{i}" for i in range(4)]

    def freeze_second(procs: dict[str, multiprocessing.Process]) -> None:
        kill_at_half(procs[str(trays[1])], Path(f"{trays[1]}.progress.json"), signal.SIGSTOP)

    first = broadcast(source, trays, action=freeze_second, rate=12_000_000, port=BASE_PORT + 300, stall=2.0)
    assert held(trays, first["entries"]) == [True, False, True, True]


def test_partial_files_are_never_visible_under_their_final_name(source: Path, tmp_path: Path) -> None:
    trays = [tmp_path / f"tray{i}" for i in range(2)]
    entries = weights.parse_manifest({"files": weights.make_manifest(str(source))["files"]})
    sizes = {e.path: e.size for e in entries}
    seen_bad: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for tray in trays:
                for path in tray.glob("*.safetensors"):
                    try:
                        if path.stat().st_size != sizes[path.name]:
                            seen_bad.append(str(path))
                    except FileNotFoundError:
                        pass

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    broadcast(source, trays, rate=15_000_000, port=BASE_PORT + 400)
    done.set()
    watcher.join()
    assert not seen_bad
    assert held(trays, entries) == [True, True]


def test_a_corrupted_shard_is_detected_and_fetched_again(source: Path, tmp_path: Path) -> None:
    trays = [tmp_path / f"tray{i}" for i in range(3)]
    first = broadcast(source, trays, port=BASE_PORT + 500)
    assert held(trays, first["entries"]) == [True] * 3
    victim = trays[2] / first["entries"][5].path
    data = bytearray(victim.read_bytes())
    data[1000] ^= 0xFF
    victim.write_bytes(bytes(data))
    report = weights.inspect(str(trays[2]), first["entries"])
    assert report["files"][first["entries"][5].path]["state"] == "corrupt"
    os.unlink(victim)  # what model_weights_mark (repair: true) does
    second = broadcast(source, trays, port=BASE_PORT + 600)
    assert second["plan"]["receivers"] == [str(trays[2])]
    assert second["plan"]["stream_bytes"] == first["entries"][5].size
    assert held(trays, first["entries"]) == [True] * 3


def test_the_index_must_agree_with_the_manifest(source: Path, tmp_path: Path) -> None:
    entries = weights.parse_manifest({"files": weights.make_manifest(str(source))["files"]})
    assert weights.check_index(str(source), entries) == []
    broken = tmp_path / "broken"
    broken.mkdir()
    index = json.loads((source / "model.safetensors.index.json").read_text())
    index["weight_map"]["extra.weight"] = "model-99999-of-000024.safetensors"
    (broken / "model.safetensors.index.json").write_text(json.dumps(index))
    problems = weights.check_index(
        str(broken), [e for e in entries if e.path != "model.safetensors.index.json"] + [weights.FileEntry("model.safetensors.index.json", 1, "0" * 64)]
    )
    assert problems and "model-99999-of-000024.safetensors" in problems[0]


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ({"files": []}, "non-empty"),
        ({"files": [{"path": "/etc/passwd", "size": 1, "sha256": "0" * 64}]}, "relative"),
        ({"files": [{"path": "../x", "size": 1, "sha256": "0" * 64}]}, "relative"),
        ({"files": [{"path": "a", "size": 1}]}, "lacks"),
        ({"files": [{"path": "a", "size": 1, "sha256": "abc"}]}, "bad sha256"),
    ],
)
def test_bad_manifests_are_refused(manifest: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        weights.parse_manifest(manifest)


def test_a_tray_without_room_is_refused_before_anything_moves(source: Path, tmp_path: Path) -> None:
    manifest = weights.make_manifest(str(source))["files"]
    entries = weights.parse_manifest({"files": manifest})
    infos = {"tray9": weights.inspect(str(tmp_path), entries) | {"free_bytes": 1000}}
    plan = plan_pass(manifest, infos, {"tray9": "127.0.0.1"}, source_host="s", source_dir=str(source), source_address="127.0.0.1", port=1, dest="/models/x")
    assert plan["problems"] and plan["problems"][0].startswith("host tray9: /models/x needs")


def test_a_receiver_marks_its_whole_copy_so_that_no_second_pass_is_needed(source: Path, tmp_path: Path) -> None:
    """mark_received (model_weights_relay mark_complete): COMPLETE only for a whole, verified copy."""
    trays = [tmp_path / f"tray{i}" for i in range(3)]
    run = broadcast(source, trays, port=BASE_PORT + 600)
    entries = run["entries"]
    results = {t: json.loads(Path(f"{t}.result.json").read_text()) for t in trays}
    digest = weights.manifest_digest(entries)
    # tray0: whole -> marked; a second call has nothing left to write.
    assert weights.mark_received(str(trays[0]), entries, results[trays[0]]) == (True, True)
    assert weights.read_marker(str(trays[0])) == digest
    assert weights.mark_received(str(trays[0]), entries, results[trays[0]]) == (True, False)
    # tray1: a shard flipped after it was published: its stamp no longer matches, it is hashed,
    # found corrupt, and the copy is not marked; nothing is removed (the next pass's check does that).
    shard = trays[1] / entries[-1].path
    data = bytearray(shard.read_bytes())
    data[0] ^= 0xFF
    shard.write_bytes(bytes(data))
    assert weights.mark_received(str(trays[1]), entries, results[trays[1]]) == (False, False)
    assert weights.read_marker(str(trays[1])) is None and shard.exists()
    # tray2: a stream that did not pass through whole, or a file that failed, marks nothing.
    assert weights.mark_received(str(trays[2]), entries, results[trays[2]] | {"state": "incomplete"}) == (False, False)
    assert weights.mark_received(str(trays[2]), entries, results[trays[2]] | {"failed": {"x": "sha256"}}) == (False, False)
    assert weights.read_marker(str(trays[2])) is None


def test_the_broadcast_role_refuses_bad_transport_settings_all_at_once(tmp_path: Path) -> None:
    """broadcast_lanes / broadcast_block_bytes out of range: one message per variable, before any task touches a tray."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  roles:\n"
        "    - role: wideep.gb200.broadcast\n      broadcast_source_dir: /nonexistent\n      broadcast_dest: /nonexistent\n"
        "      broadcast_lanes: 0\n      broadcast_block_bytes: 5000\n      broadcast_congestion: Cubic!\n"
    )
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "pythonpath"), ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)],
        env=env,
        text=True,
        capture_output=True,
        check=False,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "broadcast_lanes (model_weights_lanes for the weights) is 0: use 1 to 64" in out
    assert "broadcast_block_bytes (model_weights_block_bytes for the weights) is 5000: use a multiple of 4096" in out
    assert "broadcast_congestion (model_weights_congestion for the weights) is 'Cubic!': use the name of a TCP congestion control" in out
    assert "Manifest of the source" not in out  # refused before the first task that reads a host


def test_detached_relays_through_ansible_return_at_once_and_relay_wait_collects_their_results(source: Path, tmp_path: Path) -> None:
    """The broadcast role's start: model_weights_relay with job_path (a daemon named wideep-relay,
    started by the action with one run of the tray's Python, no module) on a receiver and on the
    source, then relay_wait on each job file. Bad arguments fail by name, as the module's."""
    manifest = weights.make_manifest(str(source))["files"]
    tray = tmp_path / "tray"
    port = BASE_PORT + 700
    common = {
        "run_id": "detached",
        "chain": ["127.0.0.1:0", f"127.0.0.1:{port}"],
        "manifest": manifest,
        "starts": {f["path"]: 0 for f in manifest},
        "connect_timeout": 20,
        "block_bytes": 65536,
        "lanes": 2,
    }
    receiver = common | {
        "index": 1,
        "needs": [f["path"] for f in manifest],
        "dest": str(tray),
        "idle_timeout": 20,
        "progress_path": str(tray / ".wideep" / "progress.json"),
        "mark_complete": True,
        "job_path": str(tmp_path / "receiver-job.json"),
    }
    began = time.monotonic()
    rc, started, output = run_module("model_weights_relay", json.dumps(receiver))
    assert rc == 0, output
    assert started["pid"] > 0 and started["changed"] is False and "invocation" not in started  # no module ran
    assert json.loads((tmp_path / "receiver-job.json").read_text()) == {"started": 1, "finished": 0}  # running: the source is not there yet
    assert Path(f"/proc/{started['pid']}/comm").read_text().strip() == "wideep-relay"
    source_args = common | {"index": 0, "source_dir": str(source), "job_path": str(tmp_path / "source-job.json")}
    rc, source_started, output = run_module("model_weights_relay", json.dumps(source_args))
    assert rc == 0 and "invocation" not in source_started, output
    assert time.monotonic() - began < 30  # both returned without waiting for the stream
    for bad, named in (({"mark_completed": True}, "mark_completed"), ({"lanes": 0}, "lanes"), ({"dest": None}, "needs dest")):
        rc, refused, output = run_module("model_weights_relay", json.dumps(receiver | {"job_path": str(tmp_path / "bad-job.json")} | bad))
        assert rc != 0 and named in refused["msg"], output
    wait_args = {"job_path": str(tmp_path / "receiver-job.json"), "progress_path": receiver["progress_path"], "interval": 1, "timeout": 60}
    rc, done, output = run_module("relay_wait", json.dumps(wait_args))
    assert rc == 0, output
    assert done["state"] == "complete" and done["holds_all"] is True and done["marked"] is True and done["changed"] is True
    assert sorted(done["published"]) == sorted(f["path"] for f in manifest)
    assert weights.read_marker(str(tray)) == weights.manifest_digest(weights.parse_manifest({"files": manifest}))
    rc, sent, output = run_module("relay_wait", json.dumps({"job_path": str(tmp_path / "source-job.json"), "timeout": 60}))
    assert rc == 0, output
    assert sent["bytes_sent"] == sum(f["size"] for f in manifest)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{started['pid']}").exists() and time.monotonic() < deadline:  # the daemon ends with its job
        time.sleep(0.1)
    assert not Path(f"/proc/{started['pid']}").exists() or "Z" in Path(f"/proc/{started['pid']}/stat").read_text().split(")")[1][:3]
    # relay_wait needs exactly one of jid and job_path
    rc, _res, output = run_module("relay_wait", json.dumps({"timeout": 1}))
    assert rc != 0 and "one of jid" in output


@pytest.mark.parametrize(
    ("lanes", "block", "congestion", "bad"),
    [
        (1, 65536, "cubic", []),
        (64, 1 << 30, "", []),
        (2, 65536, "bbr", []),
        (0, 65536, "cubic", ["lanes"]),
        (65, 65536, "cubic", ["lanes"]),
        (2, 61440, "cubic", ["block_bytes"]),
        (2, (1 << 30) + 4096, "cubic", ["block_bytes"]),
        (2, 65537, "cubic", ["block_bytes"]),
        (2, 65536, "BBR", ["congestion"]),
        (2, 65536, "a_name_too_long_", ["congestion"]),
        (0, 65536, None, ["lanes", "congestion"]),
    ],
)
def test_transport_bounds_are_one_rule_for_the_module_and_the_role(lanes: int, block: int, congestion: Any, bad: list[str]) -> None:
    """module_utils/_relay.transport_problems: the module checks it on the tray, the broadcast role (its filter) first."""
    from ansible_collections.wideep.gb200.plugins.filter.weights import relay_transport_problems
    from ansible_collections.wideep.gb200.plugins.module_utils._relay import transport_problems

    assert [p.split(" is ")[0] for p in transport_problems(lanes, block, congestion=congestion)] == bad
    names = {"lanes": "L", "block_bytes": "B", "congestion": "C"}
    assert [p.split(" is ")[0] for p in relay_transport_problems(lanes, block, names, congestion)] == [names[b] for b in bad]


def test_receivers_started_by_the_check_learn_their_place_from_the_upstreams_hello(source: Path, tmp_path: Path) -> None:
    """The broadcast role's pass: model_weights_mark checks each tray and, in the same call, starts
    the receiver of a tray that lacks something, before the pass is planned; the source's hello
    brings the plan (index, chain, starts) down the chain. A tray that holds everything starts
    nothing; a stranger's hello is refused; a taken port fails the check, named."""
    import socket

    manifest = weights.make_manifest(str(source))["files"]
    entries = weights.parse_manifest({"files": manifest})
    trays = [tmp_path / f"tray{i}" for i in range(3)]
    ports = {str(t): BASE_PORT + 800 + i for i, t in enumerate(trays)}
    full = trays[1]  # already holds the model: no receiver
    for entry in entries:
        (full / entry.path).parent.mkdir(parents=True, exist_ok=True)
        (full / entry.path).write_bytes((source / entry.path).read_bytes())
    run_id = "pass-in-band-1"

    def check(tray: Path, **receive: Any) -> tuple[int, dict[str, Any], str]:
        spec = {"run_id": run_id, "port": ports[str(tray)], "job_path": str(tray) + ".job.json", "progress_path": str(tray) + ".progress.json"}
        spec |= {"connect_timeout": 20, "idle_timeout": 20, "block_bytes": 65536, "lanes": 2} | receive
        return run_module("model_weights_mark", json.dumps({"dest": str(tray), "manifest": manifest, "receive": spec}))

    infos, pids = {}, {}
    for tray in trays:
        rc, held_now, output = check(tray)
        assert rc == 0, output
        infos[str(tray)] = held_now
        pids[str(tray)] = held_now["receiver"].get("pid")
    assert pids[str(full)] is None and infos[str(full)]["complete"] is True
    waiting = [t for t in trays if t != full]
    for tray in waiting:
        assert pids[str(tray)] > 0 and Path(f"/proc/{pids[str(tray)]}/comm").read_text().strip() == "wideep-relay"
        assert json.loads(Path(str(tray) + ".job.json").read_text()) == {"started": 1, "finished": 0}

    # a hello of another run, or one without a plan, is refused; the receiver keeps waiting
    hello_of = {"from": 0, "session": "s", "lanes": 1}
    strangers = (({"run": "another"} | hello_of, "another run"), ({"run": run_id} | hello_of, "no plan yet"))
    for hello, why in strangers:
        with socket.create_connection(("127.0.0.1", ports[str(waiting[0])]), timeout=10) as stranger:
            stranger.sendall(b"WIDEEP3 " + json.dumps(hello).encode() + b"\n")
            assert json.loads(stranger.makefile().readline()) == {"ok": False, "why": why}

    # a port that is taken fails the check on that tray, naming the port and the fix
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", BASE_PORT + 810))
        holder.listen(1)
        busy = tmp_path / "busy"
        rc, _res, output = run_module(
            "model_weights_mark",
            json.dumps({"dest": str(busy), "manifest": manifest, "receive": {"run_id": run_id, "port": BASE_PORT + 810, "job_path": str(busy) + ".job.json"}}),
        )
        assert rc != 0 and f"cannot listen on port {BASE_PORT + 810}" in output and "choose another port" in output

    addresses = {str(t): "127.0.0.1" for t in trays}
    plan = plan_pass(manifest, infos, addresses, source_host="src", source_dir=str(source), source_address="127.0.0.1", port=0, dest="", run_id=run_id)
    assert plan["run_id"] == run_id and plan["receivers"] == [str(t) for t in waiting]
    chain = ["127.0.0.1:0"] + [f"127.0.0.1:{ports[h]}" for h in plan["receivers"]]
    source_args = {"run_id": run_id, "index": 0, "chain": chain, "manifest": manifest, "starts": plan["starts"], "source_dir": str(source)}
    source_args["block_bytes"] = 65536
    rc, sent, output = run_module("model_weights_relay", json.dumps(source_args | {"connect_timeout": 20}))
    assert rc == 0, output
    assert sent["bytes_sent"] == sum(e.size for e in entries)  # once down the chain, not once per tray
    for tray in waiting:
        rc, done, output = run_module("relay_wait", json.dumps({"job_path": str(tray) + ".job.json", "interval": 1, "timeout": 60}))
        assert rc == 0, output
        assert done["state"] == "complete" and done["holds_all"] is True and done["marked"] is True, done
        assert weights.inspect(str(tray), entries, full_verify=True)["complete"]
    assert not Path(str(full) + ".job.json").exists()  # nothing was started there


def test_a_receiver_whose_plan_never_comes_ends_and_frees_its_port(source: Path, tmp_path: Path) -> None:
    """A pass refused after the check (or a source that never started): the receiver gives up
    after idle_timeout + 2 x connect_timeout, says why in its job file, and the port is free."""
    import socket

    manifest = weights.make_manifest(str(source))["files"]
    tray = tmp_path / "tray"
    port = BASE_PORT + 820
    spec = {"run_id": "never", "port": port, "job_path": str(tmp_path / "job.json"), "connect_timeout": 0.5, "idle_timeout": 1}
    rc, _held, output = run_module("model_weights_mark", json.dumps({"dest": str(tray), "manifest": manifest, "receive": spec}))
    assert rc == 0, output
    rc, _done, output = run_module("relay_wait", json.dumps({"job_path": spec["job_path"], "interval": 1, "timeout": 30}))
    assert rc != 0 and "no upstream brought the plan of run never" in output, output
    with socket.socket() as again:
        again.bind(("0.0.0.0", port))  # freed
    # check mode starts nothing
    rc, checked, output = run_module("model_weights_mark", json.dumps({"dest": str(tray), "manifest": manifest, "receive": spec}), "--check")
    assert rc == 0 and checked["receiver"] == {}, output


def _broadcast_role(source: Path, tmp_path: Path, address: str, port: int) -> subprocess.CompletedProcess[str]:
    """The broadcast role through the real ansible-playbook on localhost: the source directory
    `source`, the tray's copy at tmp_path/tray, the plan giving localhost `address`."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        f"- hosts: localhost\n  gather_facts: false\n  vars:\n    gb200_plan: {{hosts: {{localhost: {{address: {address}}}}}}}\n  roles:\n"
        "    - role: wideep.gb200.broadcast\n"
        f"      broadcast_source_dir: {source}\n      broadcast_dest: {tmp_path / 'tray'}\n"
        f"      broadcast_manifest_cache: {tmp_path / 'manifest.json'}\n      broadcast_port: {port}\n"
    )
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "pythonpath"), ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_NOCOLOR="1")
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)]
    command += ["-e", f"ansible_python_interpreter={sys.executable}"]
    return subprocess.run(command, env=env, text=True, capture_output=True, check=False, timeout=300)


def test_a_pass_refused_after_the_check_stops_the_receivers_it_started(source: Path, tmp_path: Path) -> None:
    """The broadcast role through the real ansible-playbook on localhost: the check starts the
    tray's receiver, the plan then refuses the pass (here: no address for the tray), and the role
    stops that receiver before it fails, so the port is free for the next run at once."""
    import socket

    port = BASE_PORT + 830
    proc = _broadcast_role(source, tmp_path, address="''", port=port)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "host localhost: no address in the plan" in out, out[-3000:]
    assert "Stop the receivers of a pass that cannot finish" in out and "Start the source" not in out
    deadline = time.monotonic() + 10
    while True:  # the receiver the check started is gone: its port binds again
        try:
            with socket.socket() as again:
                again.bind(("0.0.0.0", port))
            break
        except OSError:
            assert time.monotonic() < deadline, f"port {port} still held after the refused pass"
            time.sleep(0.2)
    assert json.loads((tmp_path / "tray" / ".wideep" / "relay-job.json").read_text()) == {"started": 1, "finished": 0}  # killed, not finished


def test_the_broadcast_role_moves_a_whole_copy_in_one_pass_and_a_rerun_moves_nothing(source: Path, tmp_path: Path) -> None:
    """The role end to end through the real ansible-playbook on localhost (the tray at 127.0.0.1,
    the source beside it): the check starts the receiver, the source's hello brings it the plan of
    the same run, the copy verifies and is marked, no second pass runs; a re-run starts nothing."""
    manifest = weights.parse_manifest({"files": weights.make_manifest(str(source))["files"]})
    tray = tmp_path / "tray"
    first = _broadcast_role(source, tmp_path, address="127.0.0.1", port=BASE_PORT + 840)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    assert weights.inspect(str(tray), manifest, full_verify=True)["complete"]
    assert weights.read_marker(str(tray)) == weights.manifest_digest(manifest)
    assert "(pass 1)" in first.stdout and "(pass 2)" not in first.stdout
    again = _broadcast_role(source, tmp_path, address="127.0.0.1", port=BASE_PORT + 840)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "Every tray holds the model" in again.stdout and "Start the source" not in again.stdout


def test_the_mark_action_answers_a_settled_tray_as_the_module_does(source: Path, tmp_path: Path) -> None:
    """model_weights_mark's action answers from one shell read only where the module would change
    nothing and start nothing (every stamp matches, COMPLETE holds the digest): the same result as
    the module's. A touched file, a missing marker, a full verify or a typo go to the module."""
    manifest = weights.make_manifest(str(source))["files"]
    tray = tmp_path / "tray with space"
    shutil.copytree(source, tray)
    args: dict[str, Any] = {"dest": str(tray), "manifest": manifest}
    rc, first, output = run_module("model_weights_mark", json.dumps(args))
    assert rc == 0 and first["changed"] and first["marked"] and "invocation" in first, output  # hashed, stamped, marked
    receive = {"run_id": "r1", "port": BASE_PORT + 9, "job_path": str(tmp_path / "job.json")}
    rc, action, output = run_module("model_weights_mark", json.dumps({**args, "receive": receive}))
    assert rc == 0 and "invocation" not in action, output  # the shell read answered
    module = run_module_file("model_weights_mark", {**args, "receive": receive}, tmp_path)
    keys = (
        "changed",
        "corrupt",
        "removed",
        "stamped",
        "marked",
        "unmarked",
        "index_problems",
        "digest",
        "receiver",
        "files",
        "complete",
        "missing_bytes",
        "hashed_bytes",
    )
    assert {k: action[k] for k in keys} == {k: module[k] for k in keys}
    assert action["changed"] is False and action["receiver"] == {} and action["complete"] is True
    # The same filesystem read a moment apart, on a disk other work writes to: close, not equal (a
    # wrong formula, blocks free to root or KiB for bytes, is off by more than 1 GiB or 1000 x).
    assert abs(action["free_bytes"] - module["free_bytes"]) < 1 << 30

    rc, full, output = run_module("model_weights_mark", json.dumps({**args, "full_verify": True}))
    assert rc == 0 and "invocation" in full and full["hashed_bytes"] > 0, output
    rc, typo, output = run_module("model_weights_mark", json.dumps({**args, "mark_completed": True}))
    assert rc != 0 and "mark_completed" in typo["msg"], output
    os.utime(tray / manifest[0]["path"])  # a new mtime: its stamp no longer matches
    rc, touched, output = run_module("model_weights_mark", json.dumps(args))
    assert rc == 0 and "invocation" in touched and touched["stamped"] == [manifest[0]["path"]], output
    (tray / ".wideep" / "COMPLETE").unlink()
    rc, unmarked, output = run_module("model_weights_mark", json.dumps(args))
    assert rc == 0 and "invocation" in unmarked and unmarked["marked"], output


def test_the_mark_action_starts_a_bare_trays_receiver_without_the_module_and_answers_as_the_module_does(source: Path, tmp_path: Path) -> None:
    """A tray holding none of the files (a partial file may be there): the action reads it with one
    shell read and starts the receiver with one run of the tray's Python (the relay's module_utils
    sent as source), no module run; its answer is the module's. Check mode starts nothing; a taken
    port fails, named; a tray that holds a file, or a COMPLETE marker, goes to the module."""
    import socket

    manifest = weights.make_manifest(str(source))["files"]
    entries = weights.parse_manifest({"files": manifest})
    keys = ("changed", "corrupt", "removed", "stamped", "marked", "unmarked", "index_problems", "digest", "files", "complete", "missing_bytes", "hashed_bytes")
    shard = max(entries, key=lambda e: e.size)
    assert shard.size > weights.CHUNK + 1234
    for number, (tray, partial) in enumerate(((tmp_path / "bare", 0), (tmp_path / "half done", weights.CHUNK + 1234))):
        if partial:  # the first file half received by an earlier pass: its whole chunk is kept
            part = Path(weights.partial_path(str(tray), shard.path))
            part.parent.mkdir(parents=True)
            part.write_bytes((source / shard.path).read_bytes()[:partial])
        receive = {"run_id": "r-bare", "port": BASE_PORT + 890 + number, "job_path": str(tray) + ".job.json", "idle_timeout": 2, "connect_timeout": 1}
        args = {"dest": str(tray), "manifest": manifest}
        rc, checked, output = run_module("model_weights_mark", json.dumps({**args, "receive": receive}), "--check")
        assert rc == 0 and "invocation" not in checked and checked["receiver"] == {} and not Path(receive["job_path"]).exists(), output
        rc, action, output = run_module("model_weights_mark", json.dumps({**args, "receive": receive}))
        assert rc == 0 and "invocation" not in action, output  # no module ran
        pid = action["receiver"]["pid"]
        assert action["receiver"] == {"pid": pid, "job_path": receive["job_path"], "port": receive["port"]}
        assert Path(f"/proc/{pid}/comm").read_text().strip() == "wideep-relay"
        module = run_module_file("model_weights_mark", args, tmp_path)  # no receive: starts nothing
        assert {k: action[k] for k in keys} == {k: module[k] for k in keys}
        assert action["files"][shard.path]["have"] == (weights.CHUNK if partial else 0)
        assert abs(action["free_bytes"] - module["free_bytes"]) < 1 << 30
        # the receiver holds its port: a second start fails, naming the port and the fix
        rc, again, output = run_module("model_weights_mark", json.dumps({**args, "receive": receive}))
        assert rc != 0 and f"cannot listen on port {receive['port']}" in again["msg"] and "choose another port" in again["msg"], output
        # no plan comes: it ends by itself (idle_timeout + 2 x connect_timeout), its port free again
        rc, done, output = run_module("relay_wait", json.dumps({"job_path": receive["job_path"], "interval": 1, "timeout": 30}))
        assert done["state"] == "incomplete" and "no upstream brought the plan" in done["msg"], output
        with socket.socket() as probe:
            probe.bind(("0.0.0.0", receive["port"]))

    held = tmp_path / "holds one"  # one file under its name: the module's (it hashes it)
    held.mkdir()
    (held / shard.path).write_bytes((source / shard.path).read_bytes())
    rc, one, output = run_module("model_weights_mark", json.dumps({"dest": str(held), "manifest": manifest}))
    assert rc == 0 and "invocation" in one and one["hashed_bytes"] == shard.size, output
    stale = tmp_path / "stale marker"  # no file, but a COMPLETE from before: the module removes it
    Path(weights.state_path(str(stale), "COMPLETE")).parent.mkdir(parents=True)
    Path(weights.state_path(str(stale), "COMPLETE")).write_text(json.dumps("0" * 64))
    rc, unmarked, output = run_module("model_weights_mark", json.dumps({"dest": str(stale), "manifest": manifest}))
    assert rc == 0 and "invocation" in unmarked and unmarked["unmarked"] is True, output


def test_a_booted_relay_expands_its_paths_on_the_tray_as_the_module_would(monkeypatch: pytest.MonkeyPatch) -> None:
    """The actions validate on the controller but pass paths as written: ~ and $VARS are the tray's."""
    from ansible_collections.wideep.gb200.plugins.module_utils._relay_job import expand_paths

    monkeypatch.setenv("HOME", "/home/tray")
    monkeypatch.setenv("JOBS", "/var/jobs")
    given = {"job_path": "~/.wideep/job.json", "progress_path": "$JOBS/progress.json", "dest": None, "lanes": 2}
    assert expand_paths(given, ("job_path", "progress_path", "dest")) == {
        "job_path": "/home/tray/.wideep/job.json",
        "progress_path": "/var/jobs/progress.json",
        "dest": None,
        "lanes": 2,
    }


def test_relay_wait_answers_a_job_that_already_ended_from_one_read(tmp_path: Path) -> None:
    """The source's result is usually there before its wait starts: read once, no waiting round;
    a job still running is waited for (and times out, named)."""
    done = {"started": 1, "finished": 1, "state": "complete", "published": ["a.safetensors"], "bytes_sent": 7}
    (tmp_path / "done.json").write_text(json.dumps(done))
    rc, result, output = run_module("relay_wait", json.dumps({"job_path": str(tmp_path / "done.json"), "timeout": 5}))
    assert rc == 0 and result["changed"] is True and result["state"] == "complete" and result["bytes_sent"] == 7, output
    (tmp_path / "running.json").write_text(json.dumps({"started": 1, "finished": 0}))
    rc, result, output = run_module("relay_wait", json.dumps({"job_path": str(tmp_path / "running.json"), "interval": 0.5, "timeout": 1}))
    assert rc != 0 and "still running after the timeout" in result["msg"], output
