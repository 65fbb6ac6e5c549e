"""The relay's own ceiling, with no link shaping, against what this machine can do at best.

    make bench-relay        (writes build/bench/relay.json and prints a table)

Synthetic shards (BENCH_RELAY_BYTES, default 1 GiB, in BENCH_RELAY_FILES files) are sent by the
same `Relay` class the module runs, each member in its own process: one hop (source -> 1
receiver) and chains of 2 and 4 receivers, for several lane counts (TCP connections per hop),
on loopback, and over the emulated trays' network when the cluster named by WIDEEP_EMU_NAME is
up (its links unshaped). Every receiver writes and verifies every file on disk, as on a tray.

Measured in the same run (before and after the cases; the best of each), the ceilings a relay cannot beat: sha256 on one core (a receiver
hashes every byte of a file on one core), a plain socket copy (one TCP stream, memory to
memory, two processes), and the disk's write rate (1 GiB + fsync; also with the relay's
drop-behind and with O_DIRECT, to say which to use). `efficiency` = gb_per_s / the lowest of
those. Also CPU seconds per GB of every member, and the CPU arithmetic of a chain: with C cores
and members that need s_i CPU-seconds per GB, no chain beats C / sum(s_i) GB/s.

Each case runs BENCH_RELAY_REPEAT times (default 2); the best run is reported (the machine is
shared; the best is the least disturbed), with the spread. BENCH_RELAY_BASELINE=<git rev> also
runs the relay as of that revision (one hop and the 4-receiver chain), for a before/after in the
same run. NIXL: with NIXL_PYTHON (a Python with `pip install nixl`), benchmarks/nixl_hop.py
measures one hop over NIXL/UCX (TCP) in the same run.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import multiprocessing
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "build" / "pythonpath"))

TOTAL = int(os.environ.get("BENCH_RELAY_BYTES", str(1 << 30)))
FILES = int(os.environ.get("BENCH_RELAY_FILES", "8"))
REPEAT = int(os.environ.get("BENCH_RELAY_REPEAT", "2"))
LANES = [int(x) for x in os.environ.get("BENCH_RELAY_LANES", "1,2,4").split(",")]
BLOCKS = [int(x) for x in os.environ.get("BENCH_RELAY_BLOCKS", str(1 << 20)).split(",")]  # bytes per block on the wire
# The receivers' page_cache modes to compare (the relay's write path: O_DIRECT, or drop-behind).
PAGE_CACHE = os.environ.get("BENCH_RELAY_PAGE_CACHE", "direct,drop").split(",")
BASELINE = os.environ.get("BENCH_RELAY_BASELINE", "")
NIXL_PYTHON = os.environ.get("NIXL_PYTHON", "")
EMU = os.environ.get("WIDEEP_EMU_NAME", "wideep-emu")
WORK = Path(os.environ.get("BENCH_RELAY_DIR", str(ROOT / "build" / "bench" / "relay")))
PORT = 21000 + os.getpid() % 500 * 4


# ---- members (each in its own process) ----------------------------------------------------------
def _relay_class(variant: str) -> Any:
    if variant == "now":
        from ansible_collections.wideep.gb200.plugins.module_utils._relay import Relay

        return Relay
    # A file holding another revision's _relay.py, loaded as a sibling of _weights.
    name = "ansible_collections.wideep.gb200.plugins.module_utils._relay_baseline"
    spec = importlib.util.spec_from_file_location(name, variant)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module.Relay


def _member(variant: str, kwargs: dict[str, Any], conn: Any) -> None:
    from ansible_collections.wideep.gb200.plugins.module_utils import _weights as weights

    entries = weights.parse_manifest({"files": kwargs.pop("manifest")})
    kwargs["segments"] = weights.layout(entries, {e.path: 0 for e in entries})
    kwargs["chain"] = [tuple(c) for c in kwargs["chain"]]
    kwargs["needs"] = set(kwargs["needs"])
    if variant != "now":
        kwargs.pop("lanes", None)
        kwargs.pop("block", None)
        kwargs.pop("page_cache", None)
    result = _relay_class(variant)(**kwargs).run()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    conn.send(result)


def member_main(spec_json: str) -> None:
    """`relay_bench.py member SPEC`: one member, run inside an emulated tray; prints its result."""
    spec = json.loads(spec_json)
    here, there = multiprocessing.Pipe()
    _member("now", spec, there)
    print(json.dumps(here.recv()))  # noqa: T201


# ---- data ---------------------------------------------------------------------------------------
def make_source(path: Path) -> list[dict[str, Any]]:
    from ansible_collections.wideep.gb200.plugins.module_utils import _weights as weights

    marker = path / ".wideep-made"
    if not marker.exists() or marker.read_text() != f"{TOTAL} {FILES}":
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        block = os.urandom(16 << 20)
        size = TOTAL // FILES
        for number in range(FILES):
            with open(path / f"model-{number + 1:05d}-of-{FILES:05d}.safetensors", "wb") as handle:
                left = size
                while left > 0:
                    piece = block[: min(left, len(block))]
                    handle.write(number.to_bytes(8, "little") + piece[8:])  # no two blocks alike
                    left -= len(piece)
        marker.write_text(f"{TOTAL} {FILES}")
    return weights.make_manifest(str(path))["files"]


# ---- ceilings -----------------------------------------------------------------------------------
def sha256_rate() -> float:
    data = os.urandom(64 << 20) * 4
    best = 0.0
    for _attempt in range(3):
        began = time.perf_counter()
        hashlib.sha256(data).hexdigest()
        best = max(best, len(data) / (time.perf_counter() - began))
    return best / 1e9


def _sink(port: int, total: int, conn: Any) -> None:
    server = socket.create_server(("127.0.0.1", port))
    conn.send("ready")
    peer, _address = server.accept()
    buf = bytearray(4 << 20)
    got = 0
    while got < total:
        count = peer.recv_into(buf)
        if not count:
            break
        got += count
    usage = resource.getrusage(resource.RUSAGE_SELF)
    conn.send((got, usage.ru_utime + usage.ru_stime))


def socket_rate(port: int) -> tuple[float, float]:
    """One TCP stream on loopback, memory to memory (recv_into a buffer, nothing else)."""
    best, cpu = 0.0, 0.0
    for attempt in range(2):
        ctx = multiprocessing.get_context("spawn")
        here, there = ctx.Pipe()
        proc = ctx.Process(target=_sink, args=(port + attempt, TOTAL, there))
        proc.start()
        here.recv()
        sock = socket.create_connection(("127.0.0.1", port + attempt))
        view = memoryview(os.urandom(4 << 20))
        began = time.perf_counter()
        sent = 0
        while sent < TOTAL:
            sock.sendall(view)
            sent += len(view)
        got, sink_cpu = here.recv()
        rate = got / (time.perf_counter() - began)
        sock.close()
        proc.join()
        if rate / 1e9 > best:
            best, cpu = rate / 1e9, sink_cpu / (got / 1e9)
    return best, cpu


def disk_rates(directory: Path) -> dict[str, float]:
    """1 GiB written in 4 MiB blocks then fsync: buffered, with the relay's drop-behind, O_DIRECT."""
    from ansible_collections.wideep.gb200.plugins.module_utils import _relay

    directory.mkdir(parents=True, exist_ok=True)
    import mmap

    buf = mmap.mmap(-1, 4 << 20)
    buf.write(os.urandom(4 << 20))
    out = {}
    for mode in ("buffered", "drop_behind", "o_direct"):
        path = directory / f"disk-{mode}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (getattr(os, "O_DIRECT", 0) if mode == "o_direct" else 0)
        try:
            fd = os.open(path, flags, 0o644)
        except OSError as exc:
            out[mode] = 0.0
            print(f"disk {mode}: {exc}", file=sys.stderr)  # noqa: T201
            continue
        began = time.perf_counter()
        written = flushed = synced = 0
        try:
            while written < TOTAL:
                written += os.pwrite(fd, buf, written)
                if mode == "drop_behind" and written - flushed >= _relay.DROP_WINDOW:
                    _relay._flush_range(fd, flushed, written - flushed, wait=False)
                    _relay._flush_range(fd, synced, flushed - synced, wait=True)
                    synced, flushed = flushed, written
            os.fsync(fd)
            out[mode] = written / (time.perf_counter() - began) / 1e9
        except OSError as exc:  # O_DIRECT refused by this filesystem
            out[mode] = 0.0
            print(f"disk {mode}: {exc}", file=sys.stderr)  # noqa: T201
        finally:
            os.close(fd)
            path.unlink()
    return out


# ---- one case -----------------------------------------------------------------------------------
def _listening_ports(tray: str = "") -> set[int]:
    """Ports in LISTEN here, or in an emulated tray's network namespace."""
    tables = ("/proc/net/tcp", "/proc/net/tcp6")
    if tray:
        text = docker("exec", tray, "cat", *tables, check=False)
    else:
        text = ""
        for table in tables:
            with contextlib.suppress(OSError), open(table, encoding="ascii") as handle:
                text += handle.read()
    ports = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A" and ":" in fields[1]:  # LISTEN
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _wait_listening(ports: dict[str, list[int]], timeout: float = 60.0) -> None:
    """The source starts once every receiver listens (ports by tray; "" = this host): otherwise
    a receiver that starts slower than the source costs the case the source's connect retry
    (0.2 s), which is the bench's race, not the relay's rate. (In `stage` the receivers are
    started by the check, before the source.)"""
    deadline = time.monotonic() + timeout
    for tray, wanted in ports.items():
        while not set(wanted) <= _listening_ports(tray):
            if time.monotonic() > deadline:
                raise RuntimeError(f"receivers not listening on {sorted(set(wanted) - _listening_ports(tray))} {tray} after {timeout:.0f} s")
            time.sleep(0.01)


def run_chain(
    manifest: list[dict[str, Any]], source: Path, receivers: int, lanes: int, variant: str, port: int, block: int = BLOCKS[0], page_cache: str = PAGE_CACHE[0]
) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    chain = [["127.0.0.1", 0]] + [["127.0.0.1", port + i] for i in range(1, receivers + 1)]
    common = {"run_id": f"bench-{port}", "chain": chain, "manifest": manifest, "stall_timeout": 30, "connect_timeout": 30, "lanes": lanes, "block": block}
    procs = []
    for index in range(1, receivers + 1):
        dest = WORK / f"tray{index}"
        shutil.rmtree(dest, ignore_errors=True)
        kwargs = common | {
            "index": index,
            "needs": [f["path"] for f in manifest],
            "dest": str(dest),
            "listen_host": "127.0.0.1",
            "idle_timeout": 60,
            "page_cache": page_cache,
        }
        here, there = ctx.Pipe()
        proc = ctx.Process(target=_member, args=(variant, kwargs, there))
        proc.start()
        procs.append((proc, here))
    _wait_listening({"": [port + i for i in range(1, receivers + 1)]})
    here, there = ctx.Pipe()
    src = ctx.Process(target=_member, args=(variant, common | {"index": 0, "needs": [], "dest": None, "source_dir": str(source)}, there))
    src.start()
    source_result = here.recv()
    results = [conn.recv() for _proc, conn in procs]
    for proc, _conn in [*procs, (src, None)]:
        proc.join()
    for index in range(1, receivers + 1):  # the disk may be shared: hold no more than one case
        shutil.rmtree(WORK / f"tray{index}", ignore_errors=True)
    return _row(source_result, results, manifest, receivers, lanes) | {"page_cache": page_cache}


def _row(source_result: dict[str, Any], results: list[dict[str, Any]], manifest: list[dict[str, Any]], receivers: int, lanes: int) -> dict[str, Any]:
    total = sum(f["size"] for f in manifest)
    ok = all(r["state"] == "complete" and len(r["published"]) == len(manifest) for r in results)
    seconds = max(r["finished_at"] for r in results) - source_result["started_at"]
    return {
        "receivers": receivers,
        "lanes": lanes,
        "bytes": total,
        "seconds": round(seconds, 3),
        "gb_per_s": round(total / seconds / 1e9, 3) if ok else 0.0,
        "verified": ok,
        "cpu_s_per_gb": {"source": round(source_result["cpu_s"] / (total / 1e9), 3), "receivers": [round(r["cpu_s"] / (total / 1e9), 3) for r in results]},
    }


def best_of(run: Any) -> dict[str, Any]:
    rows = [run() for _run in range(REPEAT)]
    best = max(rows, key=lambda r: r["gb_per_s"])
    return best | {"runs_gb_per_s": [r["gb_per_s"] for r in rows], "verified": all(r["verified"] for r in rows)}


# ---- emulated trays -----------------------------------------------------------------------------
def docker(*args: str, check: bool = True) -> str:
    return subprocess.run(["docker", *args], check=check, text=True, capture_output=True, stdin=subprocess.DEVNULL).stdout


def emulated_cases(manifest: list[dict[str, Any]], source: Path) -> list[dict[str, Any]]:
    trays = [f"{EMU}-tray{i}" for i in range(1, 6)]
    running = set(docker("ps", "--format", "{{.Names}}", check=False).split())
    if not all(t in running for t in trays):
        print(f"emulated: {', '.join(t for t in trays if t not in running)} not running: skipped (emulated/cluster.py up)")  # noqa: T201
        return []
    shaped = any("tbf" in docker("exec", t, "tc", "qdisc", "show", "dev", "eth0", check=False) for t in trays)
    address = {t: docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", t).strip() for t in trays}
    base = "/tmp/wideep-relay-bench"
    for tray in trays:
        docker("exec", tray, "rm", "-rf", base)
        docker("exec", tray, "mkdir", "-p", f"{base}/pp/ansible_collections/wideep/gb200/plugins")
        docker("cp", str(ROOT / "plugins" / "module_utils"), f"{tray}:{base}/pp/ansible_collections/wideep/gb200/plugins/module_utils")
        docker("cp", str(Path(__file__)), f"{tray}:{base}/relay_bench.py")
    docker("cp", str(source), f"{trays[0]}:{base}/source")
    rows = []
    for receivers in (1, 4):
        for lanes in LANES:

            def run(receivers: int = receivers, lanes: int = lanes) -> dict[str, Any]:
                port = 29700 + receivers * 10 + lanes
                members = [trays[0], *trays[1 : receivers + 1]]
                chain = [[address[trays[0]], 0]] + [[address[t], port] for t in members[1:]]
                common = {"run_id": f"emu-{time.time()}", "chain": chain, "manifest": manifest, "lanes": lanes, "block": BLOCKS[0], "page_cache": PAGE_CACHE[0]}
                common |= {"stall_timeout": 30, "connect_timeout": 30}
                procs = []
                # receivers first; the source once they listen
                for index, tray in [*list(enumerate(members))[1:], (0, members[0])]:
                    spec = common | {"index": index}
                    if index == 0:
                        spec |= {"needs": [], "dest": None, "source_dir": f"{base}/source"}
                    else:
                        docker("exec", tray, "rm", "-rf", f"{base}/dest")
                        spec |= {"needs": [f["path"] for f in manifest], "dest": f"{base}/dest", "idle_timeout": 60}
                    cmd = ["docker", "exec", "-e", f"PYTHONPATH={base}/pp", tray, "python3", f"{base}/relay_bench.py", "member", json.dumps(spec)]
                    if index == 0:
                        _wait_listening({t: [port] for t in members[1:]})
                    procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))
                outs = [json.loads((p.communicate()[0].strip().splitlines() or ["{}"])[-1]) for p in procs]
                source_out = outs.pop()
                for tray in members[1:]:
                    docker("exec", tray, "rm", "-rf", f"{base}/dest")
                return _row(source_out, outs, manifest, receivers, lanes) | {"page_cache": PAGE_CACHE[0]}

            row = best_of(run)
            rows.append(
                row | {"case": f"emulated-{'hop' if receivers == 1 else f'chain-{receivers}'}", "network": "emulated trays (docker bridge)", "shaped": shaped}
            )
            print(json.dumps(rows[-1]), flush=True)  # noqa: T201
    for tray in trays:
        docker("exec", tray, "rm", "-rf", base, check=False)
    return rows


# ---- main ---------------------------------------------------------------------------------------
def nixl_rows(source: Path) -> list[dict[str, Any]]:
    if not NIXL_PYTHON:
        print("nixl: NIXL_PYTHON not set (a Python with `pip install nixl`): skipped")  # noqa: T201
        return []
    first = min(source.glob("*.safetensors"))
    proc = subprocess.run([NIXL_PYTHON, str(ROOT / "benchmarks" / "nixl_hop.py"), str(first), str(TOTAL)], text=True, capture_output=True, check=False)
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not rows:
        print(f"nixl: failed ({proc.returncode}): {proc.stderr[-1500:]}")  # noqa: T201
    return [r | {"receivers": 1, "network": "loopback"} for r in rows]


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "member":
        member_main(sys.argv[2])
        return
    WORK.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    source = WORK / "source"
    manifest = make_source(source)
    total = sum(f["size"] for f in manifest)
    print(  # noqa: T201
        f"W = {total / 1e9:.2f} GB in {len(manifest)} files; {os.cpu_count()} cores; load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; best of {REPEAT}",
        flush=True,
    )

    def measure_ceilings() -> dict[str, float]:
        sock, sink_cpu = socket_rate(PORT + 900 + int(time.time()) % 50 * 2)
        disk = disk_rates(WORK / "disk")
        found = {"sha256_one_core": sha256_rate(), "socket_copy": sock, "socket_receiver_cpu_s_per_gb": sink_cpu}
        found |= {f"disk_{mode}": rate for mode, rate in disk.items()}
        print("ceilings (GB/s): " + ", ".join(f"{k} {v:.2f}" for k, v in found.items()), flush=True)  # noqa: T201
        return found

    # Measured before and after the cases; the best of each is kept (a busy machine only lowers them).
    first = measure_ceilings()
    ceilings: dict[str, float] = {}
    cores = os.cpu_count() or 1
    rows: list[dict[str, Any]] = []
    port = PORT

    def record(row: dict[str, Any]) -> None:
        cpu = row.get("cpu_s_per_gb")
        if cpu:
            per_gb = cpu["source"] + sum(cpu["receivers"])
            row["cpu_ceiling_gb_per_s"] = round(cores / per_gb, 3) if per_gb else None
        rows.append(row)
        print(json.dumps(row), flush=True)  # noqa: T201

    baseline_file = None
    if BASELINE:
        baseline_file = WORK / "baseline_relay.py"
        baseline_file.write_text(
            subprocess.run(["git", "show", f"{BASELINE}:plugins/module_utils/_relay.py"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
        )
    for receivers in (1, 2, 4):
        for block in BLOCKS:
            for mode in PAGE_CACHE:
                for lanes in LANES:
                    port += 10
                    record(
                        best_of(lambda r=receivers, n=lanes, p=port, b=block, m=mode: run_chain(manifest, source, r, n, "now", p, b, m))
                        | {"case": f"loopback-{'hop' if receivers == 1 else f'chain-{receivers}'}", "network": "loopback", "block": block}
                    )
        if baseline_file and receivers in (1, 4):
            port += 10
            record(
                best_of(lambda r=receivers, p=port: run_chain(manifest, source, r, 1, str(baseline_file), p))
                | {"case": f"loopback-{'hop' if receivers == 1 else f'chain-{receivers}'}-baseline-{BASELINE}", "network": "loopback"}
            )
    for row in emulated_cases(manifest, source):
        record(row)
    for row in nixl_rows(source):
        record(row | {"case": row["case"]})
    last = measure_ceilings()
    best = {k: max(first[k], last[k]) for k in first}
    best["socket_receiver_cpu_s_per_gb"] = min(first["socket_receiver_cpu_s_per_gb"], last["socket_receiver_cpu_s_per_gb"])
    # The disk's ceiling in the row's own write path (O_DIRECT where the relay used it).
    disk_by_mode = {"direct": best["disk_o_direct"], "drop": best["disk_drop_behind"], "keep": best["disk_buffered"]}
    ceilings_of: dict[str, dict[str, float]] = {}
    for mode, disk_rate in disk_by_mode.items():
        disk_ceiling = disk_rate or best["disk_drop_behind"] or best["disk_buffered"]
        ceilings_of[mode] = {
            "sha256_one_core": round(best["sha256_one_core"], 3),
            "socket_copy": round(best["socket_copy"], 3),
            "disk_write_fsync": round(disk_ceiling, 3),
        }
    ceilings = ceilings_of[PAGE_CACHE[0]]
    lowest = min(ceilings.values())
    for row in rows:
        row.setdefault("block", BLOCKS[0])
        these = ceilings_of.get(row.get("page_cache", PAGE_CACHE[0]), ceilings)
        row |= {"sha256_gb_per_s": these["sha256_one_core"], "ceilings": these, "efficiency": round(row["gb_per_s"] / min(these.values()), 3)}
    measured = {"first": first, "last": last}
    shutil.rmtree(WORK / "disk", ignore_errors=True)
    for index in range(1, 5):
        shutil.rmtree(WORK / f"tray{index}", ignore_errors=True)
    out = ROOT / "build" / "bench" / "relay.json"
    out.parent.mkdir(parents=True, exist_ok=True)  # BENCH_RELAY_DIR may be elsewhere
    out.write_text(json.dumps(rows, indent=2) + "\n")
    (out.parent / "relay-ceilings.json").write_text(json.dumps(measured, indent=2) + "\n")
    load = os.getloadavg()
    print(f"\nceilings (GB/s, best of before/after): {ceilings}; lowest {lowest:.2f}; load at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")  # noqa: T201
    print(  # noqa: T201
        f"{'case':<34} {'N':>2} {'block':>5} {'write':>6} {'lanes':>5} {'GB/s':>6} {'runs':>14} {'eff':>5} {'x sha':>6}"
        f" {'CPU s/GB src; relays':>28} {'CPU ceil':>8}"
    )
    for r in rows:
        cpu = r.get("cpu_s_per_gb") or {}
        cpu_text = f"{cpu.get('source', '-')}; {','.join(str(x) for x in cpu.get('receivers', []))}" if cpu else f"init {r.get('initiator_cpu_s_per_gb', '-')}"
        block = f"{r['block'] >> 20}M" if r.get("lanes") else "-"
        runs = ",".join(str(x) for x in r.get("runs_gb_per_s", []))
        print(  # noqa: T201
            f"{r['case']:<34} {r['receivers']:>2} {block:>5} {r.get('page_cache', '-'):>6} {r.get('lanes', '-')!s:>5} {r['gb_per_s']:>6.2f} {runs:>14}"
            f" {r['efficiency']:>5.2f} {r['gb_per_s'] / ceilings['sha256_one_core']:>6.2f} {cpu_text:>28} {r.get('cpu_ceiling_gb_per_s') or '-'!s:>8}"
        )
    print(f"written: {out.relative_to(ROOT)}")  # noqa: T201


if __name__ == "__main__":
    main()
