"""The weights broadcast against the naive baseline, on emulated trays with shaped links.

    make bench-weights            (writes build/bench/weights.json and prints a table)

A cluster of its own (name wideep-bench, subnet 172.31.241.0/24, 1 source tray + 8 trays) is
started; every tray's link is shaped with tc to the same rate B in both directions (egress tbf
on eth0, ingress through an ifb device); the model is synthetic (DeepSeek-R1's layout, sized so
that W/B is about 25 s). For N = 4 and N = 8 receiving trays, in one run, it measures
`wideep.gb200.stage` with model_weights_method=chain (the collection's method) and =fanout (the
naive baseline: every tray fetches from the one source). seconds = from the source relay's start
to the last tray holding verified files; ratio = seconds / (W/B). Also: bytes the source sent,
the whole playbook's time, and a re-run on the finished trays (seconds, bytes moved).
The cluster is removed at the end (`KEEP=1` keeps it; `BENCH_REUSE=1` uses one that is up).

Overhead: the playbook's time beyond the transfer (playbook seconds - seconds), split into
before the source's first byte and after the last verified byte, and the slowest tasks
(ansible.posix.profile_tasks). Robustness on a shared machine: each case runs BENCH_REPEAT
times (default 2; the naive baseline BENCH_REPEAT_NAIVE, default 1) and the row with the median
transfer time is reported (of 2, the faster), with every run's seconds beside it; a run that
fails is retried once (and counted). BENCH_NODES (default 4,8) picks the cases' tray counts.
BENCH_VARS="name=value ..." passes variables to every stage run (the relay's model_weights_lanes /
_block_bytes / _page_cache / _congestion, to compare them). For each chain row it also prints
where the seconds went, from the relays' own clocks (split_pass). The cluster's name and subnet
come from WIDEEP_EMU_NAME / WIDEEP_EMU_SUBNET when set (else wideep-bench, 172.31.241.0/24), so
two checkouts can each run their own.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NAME = os.environ.get("WIDEEP_EMU_NAME", "wideep-bench")
SUBNET = os.environ.get("WIDEEP_EMU_SUBNET", "172.31.241.0/24")
REPEAT = int(os.environ.get("BENCH_REPEAT", "2"))
METHODS = os.environ.get("BENCH_METHODS", "chain,fanout").split(",")  # fanout: the naive baseline
REPEAT_NAIVE = int(os.environ.get("BENCH_REPEAT_NAIVE", "1"))  # the baseline takes N x W/B per run
NODES = [int(n) for n in os.environ.get("BENCH_NODES", "4,8").split(",")]  # receiving trays per case (at most 8)
RATE_MBIT = int(os.environ.get("BENCH_RATE_MBIT", "200"))
SHARDS = int(os.environ.get("BENCH_SHARDS", "150"))
SHARD_BYTES = int(os.environ.get("BENCH_SHARD_BYTES", str(4 << 20)))
LINK = RATE_MBIT * 1_000_000 // 8
# Extra variables for every stage run, e.g. BENCH_VARS="model_weights_block_bytes=1048576 model_weights_lanes=1".
EXTRA_VARS = os.environ.get("BENCH_VARS", "").split()
INVENTORY = ROOT / "build" / "bench" / "hosts.yml"
DEST = "/models/deepseek-ai/DeepSeek-R1"


def sh(*cmd: str, check: bool = True, capture: bool = True) -> str:
    proc = subprocess.run(list(cmd), check=check, text=True, capture_output=capture, stdin=subprocess.DEVNULL)
    return proc.stdout if capture else ""


def shape(tray: str) -> None:
    """B in both directions: egress tbf on eth0, ingress redirected to ifb0 with the same tbf."""
    rate = f"{RATE_MBIT}mbit"
    script = f"""
set -e
tc qdisc replace dev eth0 root tbf rate {rate} burst 256kb latency 50ms
ip link show ifb0 >/dev/null 2>&1 || ip link add ifb0 type ifb
ip link set ifb0 up
tc qdisc del dev eth0 ingress 2>/dev/null || true
tc qdisc add dev eth0 handle ffff: ingress
tc filter add dev eth0 parent ffff: protocol all u32 match u32 0 0 action mirred egress redirect dev ifb0
tc qdisc replace dev ifb0 root tbf rate {rate} burst 256kb latency 50ms
"""
    sh("docker", "exec", tray, "sh", "-c", script)


def stage(limit: list[str], method: str) -> tuple[float, str, float, float]:
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "pythonpath"),
        ANSIBLE_NOCOLOR="1",
        # results() reads the one-line JSON results of -v (ansible.cfg prefers YAML for people)
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",
        ANSIBLE_CALLBACK_FORMAT_PRETTY="false",
        ANSIBLE_CALLBACKS_ENABLED="wideep.gb200.preload,ansible.posix.profile_tasks",  # the first as ansible.cfg says
        PROFILE_TASKS_TASK_OUTPUT_LIMIT="8",
    )
    cmd = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "wideep.gb200.stage",
        # the weights only: the serving image and the kernel caches have benchmarks of their own
        # (bench-warm-start), and the image's source tray is not among the --limit'ed trays
        "--tags",
        "weights",
        "-i",
        str(INVENTORY),
        "-i",
        str(ROOT / "inventories" / "emulated"),
        "--limit",
        ",".join(limit),
        "-e",
        f"model_weights_method={method}",
        "-e",
        "model_weights_progress_interval=5",
        *[arg for pair in EXTRA_VARS for arg in ("-e", pair)],
        "-v",
    ]
    started, wall_start = time.monotonic(), time.time()
    proc = subprocess.run(cmd, env=env, text=True, capture_output=True, stdin=subprocess.DEVNULL, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-2000:])
        raise RuntimeError(f"stage failed ({method}, {len(limit)} trays)")
    return elapsed, proc.stdout, wall_start, time.time()


def slowest_tasks(output: str) -> list[list[Any]]:
    """profile_tasks' summary: [[task, seconds], ...], slowest first."""
    pattern = r"^(.+?) -{3,} (\d+\.\d+)s$"
    return [[re.sub(r"\s+", " ", m.group(1)).strip(), float(m.group(2))] for m in re.finditer(pattern, output, re.MULTILINE)]


def results(output: str) -> list[dict[str, Any]]:
    """The relay results printed by -v (relay_wait and the source's async_status)."""
    found = []
    for match in re.finditer(r"=> (\{.*\"finished_at\".*\})$", output, re.MULTILINE):
        try:
            found.append(json.loads(match.group(1)))
        except ValueError:
            continue
    return found


def split_pass(source: dict[str, Any], receivers: list[dict[str, Any]], total: int) -> dict[str, Any]:
    """Where a pass's seconds go, from the relays' own clocks (the trays share the host's clock):
    the chain's start (the source's start -> its first byte), the stream (-> the first receiver
    holding every byte; its rate against B), each later hop's lag (the last byte reaching tray k
    after tray k-1) and the end (the last byte on the last tray -> every tray verified)."""
    if source.get("first_byte_at") is None or any(r.get("last_byte_at") is None for r in receivers):
        return {}  # a relay of a revision before these clocks
    chain = sorted(receivers, key=lambda r: r["index"])
    stream = chain[0]["last_byte_at"] - source["first_byte_at"]
    lags = [b["last_byte_at"] - a["last_byte_at"] for a, b in itertools.pairwise(chain)]
    return {
        "start_s": round(source["first_byte_at"] - source["started_at"], 2),
        "stream_s": round(stream, 2),
        "stream_over_b": round(total / stream / LINK, 3),
        "hop_lags_s": [round(lag, 3) for lag in lags],
        "end_s": round(max(r["finished_at"] for r in chain) - max(r["last_byte_at"] for r in chain), 2),
    }


def measure_once(trays: list[str], method: str, total: int) -> dict[str, Any]:
    for tray in trays:
        sh("docker", "exec", f"{NAME}-{tray}", "rm", "-rf", DEST)
    playbook_s, output, wall_start, wall_end = stage(trays, method)
    relays = results(output)
    source = next((r for r in relays if r.get("index") == 0), None)
    if source is None:
        raise RuntimeError("no result of the source relay in the playbook's output: " + output[-3000:])
    receivers = [r for r in relays if r.get("index", 0) > 0]
    assert len(receivers) == len(trays) and all(r["state"] == "complete" for r in receivers), output[-3000:]
    last = max(r["finished_at"] for r in receivers)
    seconds = last - source["started_at"]
    phases = split_pass(source, receivers, total) if method == "chain" else {}
    sums = {sh("docker", "exec", f"{NAME}-{t}", "sh", "-c", f"cd {DEST} && cat $(ls *.safetensors) | sha256sum") for t in trays}
    rerun_s, rerun_out, _start, _end = stage(trays, method)
    return {
        "approach": "pipelined-chain" if method == "chain" else "naive",
        "nodes": len(trays),
        "bytes": total,
        "link_bytes_per_s": LINK,
        "seconds": round(seconds, 2),
        "ratio": round(seconds / (total / LINK), 3),
        "source_bytes_sent": source["bytes_sent"],
        "source_bytes_over_w": round(source["bytes_sent"] / total, 3),
        "playbook_seconds": round(playbook_s, 1),
        # the playbook's time beyond the transfer: before the source started, after the last tray verified
        "overhead_seconds": round(playbook_s - seconds, 1),
        "overhead_before_s": round(source["started_at"] - wall_start, 1),
        "overhead_after_s": round(wall_end - last, 1),
        "slowest_tasks": slowest_tasks(output)[:6],
        **phases,
        "copies_identical": len(sums) == 1,
        "rerun_seconds": round(rerun_s, 1),
        "rerun_moved_nothing": "this pass moved nothing" in rerun_out and "Start the source" not in rerun_out,
    }


def measure(trays: list[str], method: str, total: int) -> dict[str, Any]:
    """BENCH_REPEAT runs; the one with the median transfer time, all runs' seconds beside it."""
    runs, failures = [], 0
    repeat = REPEAT if method == "chain" else REPEAT_NAIVE
    while len(runs) < repeat:
        try:
            runs.append(measure_once(trays, method, total))
        except (RuntimeError, AssertionError) as exc:
            failures += 1
            print(f"run failed ({method}, {len(trays)} trays): {str(exc)[:300]}", file=sys.stderr, flush=True)  # noqa: T201
            if failures > repeat:
                raise SystemExit(f"stage kept failing ({method}, {len(trays)} trays)") from exc
    runs.sort(key=lambda r: r["seconds"])
    row = runs[(len(runs) - 1) // 2]
    return row | {"runs_seconds": [r["seconds"] for r in runs], "runs_overhead_s": [r["overhead_seconds"] for r in runs], "failed_runs": failures}


def main() -> None:
    INVENTORY.parent.mkdir(parents=True, exist_ok=True)
    cluster = [sys.executable, str(ROOT / "emulated" / "cluster.py")]
    sh(*cluster, "install-engine", capture=False)
    running = sh("docker", "ps", "--format", "{{.Names}}", check=False).split()
    reuse = os.environ.get("BENCH_REUSE") and all(f"{NAME}-tray{i}" in running for i in range(9))
    if not reuse:
        sh(
            *cluster,
            "up",
            "--name",
            NAME,
            "--subnet",
            SUBNET,
            "--prefill-workers",
            "2",
            "--prefill-nodes",
            "2",
            "--decode-workers",
            "2",
            "--decode-nodes",
            "2",
            "--model-shards",
            str(SHARDS),
            "--model-shard-bytes",
            str(SHARD_BYTES),
            capture=False,
        )
    # cluster.py writes build/emulated/hosts.yml for whichever cluster came up last: with
    # BENCH_REUSE, another cluster (make cluster-test) may have come up since, so the copy made
    # when this one came up is kept unless the fresh file is this cluster's.
    fresh = (ROOT / "build" / "emulated" / "hosts.yml").read_text()
    ours = SUBNET.rsplit(".", 1)[0] + "."
    if not reuse or ours in fresh:
        INVENTORY.write_text(fresh)
    elif not INVENTORY.exists() or ours not in INVENTORY.read_text():
        raise SystemExit(f"BENCH_REUSE=1: no inventory of cluster {NAME} ({SUBNET}) in {INVENTORY}; run without BENCH_REUSE")
    try:
        for index in range(9):
            shape(f"{NAME}-tray{index}")
        total = SHARDS * (SHARD_BYTES + 0) + 0
        manifest_total = int(sh("docker", "exec", f"{NAME}-tray0", "sh", "-c", "du -cb /srv/wideep-source/DeepSeek-R1/* | tail -1 | cut -f1").strip())
        total = manifest_total
        rows = []
        # Not measured: hashes the source into its manifest cache once (every measured run reuses
        # it, as every pass after the first does), so that the first row does not carry it.
        stage(["tray1"], "chain")
        print(f"load before: {os.getloadavg()}", flush=True)  # noqa: T201
        for nodes in NODES:
            trays = [f"tray{i}" for i in range(1, nodes + 1)]
            for method in METHODS:
                row = measure(trays, method, total)
                rows.append(row)
                print(json.dumps(row), flush=True)  # noqa: T201
    finally:
        if not os.environ.get("KEEP"):
            sh(*cluster, "down", "--name", NAME, capture=False)
    out = ROOT / "build" / "bench" / "weights.json"
    out.write_text(json.dumps(rows, indent=2) + "\n")
    chain = {r["nodes"]: r for r in rows if r["approach"] != "naive"}
    print(f"\nW = {total / 1e6:.0f} MB, B = {LINK / 1e6:.0f} MB/s ({RATE_MBIT} Mbit/s, both directions), W/B = {total / LINK:.1f} s")  # noqa: T201
    print(f"median of {REPEAT} run(s) per chain row, {REPEAT_NAIVE} per naive row; load at the end {os.getloadavg()}")  # noqa: T201
    print(  # noqa: T201
        f"{'approach':<16} {'N':>3} {'seconds':>8} {'ratio':>6} {'source/W':>9} {'playbook s':>11} {'overhead s':>11}"
        f" {'(before+after)':>15} {'re-run s':>9} identical  runs"
    )
    for r in rows:
        print(  # noqa: T201
            f"{r['approach']:<16} {r['nodes']:>3} {r['seconds']:>8.1f} {r['ratio']:>6.2f} {r['source_bytes_over_w']:>9.2f}"
            f" {r['playbook_seconds']:>11.1f} {r['overhead_seconds']:>11.1f} {r['overhead_before_s']:>7.1f}+{r['overhead_after_s']:<7.1f}"
            f" {r['rerun_seconds']:>9.1f} {r['copies_identical']!s:>9}  {r['runs_seconds']}"
        )
    for r in rows:
        if r.get("hop_lags_s") is not None:
            lags = r["hop_lags_s"]
            print(  # noqa: T201
                f"where the seconds go, {r['approach']} N={r['nodes']}: start {r['start_s']:.2f} s, stream {r['stream_s']:.2f} s"
                f" ({r['stream_over_b']:.3f} x B), {len(lags)} more hops {sum(lags):.2f} s (each {min(lags):.3f}-{max(lags):.3f}), end {r['end_s']:.2f} s"
            )
    for r in rows:
        if r["approach"] != "naive":
            print(f"slowest tasks, chain N={r['nodes']}: " + "; ".join(f"{name} {sec:.1f}s" for name, sec in r["slowest_tasks"]))  # noqa: T201
    if 4 in chain and 8 in chain:
        print(f"time(N=8)/time(N=4) for the chain: {chain[8]['seconds'] / chain[4]['seconds']:.3f}")  # noqa: T201
    print(f"written: {out.relative_to(ROOT)}")  # noqa: T201


if __name__ == "__main__":
    main()
